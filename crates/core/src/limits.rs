//! Lambda's quotas, as Nimbus enforces them (`lambda-compat.md` §6).

/// Smallest MemorySize in MB.
pub const MEMORY_MIN_MB: u32 = 128;
/// Largest MemorySize in MB.
pub const MEMORY_MAX_MB: u32 = 10_240;
/// Largest MemorySize the API model accepts at all (larger values are a `ValidationException`).
pub const MEMORY_MODEL_MAX_MB: u32 = 32_768;
/// Default MemorySize in MB.
pub const MEMORY_DEFAULT_MB: u32 = 128;
/// Timeout range in seconds.
pub const TIMEOUT_MIN_S: u32 = 1;
/// Largest Timeout for on-demand functions.
pub const TIMEOUT_MAX_S: u32 = 900;
/// Largest Timeout the API model accepts at all.
pub const TIMEOUT_MODEL_MAX_S: u32 = 5_400;
/// Default Timeout in seconds.
pub const TIMEOUT_DEFAULT_S: u32 = 3;
/// EphemeralStorage range in MB.
pub const EPHEMERAL_MIN_MB: u32 = 512;
/// Largest EphemeralStorage in MB.
pub const EPHEMERAL_MAX_MB: u32 = 10_240;
/// Total size of environment variable keys and values, in bytes.
pub const ENV_VARS_MAX_BYTES: usize = 4 * 1024;
/// Largest zip accepted in a request (after base64 decoding).
pub const ZIP_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Largest CreateFunction/UpdateFunctionCode request body: the base64 of [`ZIP_MAX_BYTES`] plus
/// the JSON around it, the limit AWS reports.
pub const CODE_REQUEST_MAX_BYTES: usize = 69_905_067;
/// Largest request body of any other management operation.
pub const REQUEST_MAX_BYTES: usize = 6 * 1024 * 1024;
/// Largest unzipped code size, layers included.
pub const UNZIPPED_MAX_BYTES: u64 = 250 * 1024 * 1024;
/// Largest number of entries in one package.
pub const ZIP_MAX_ENTRIES: usize = 100_000;
/// Largest ratio of an entry's unpacked size to its packed size before it counts as a bomb.
/// Text compresses about 10:1, sparse data a few hundred to one; deflate's own ceiling is ~1032:1.
pub const ZIP_MAX_RATIO: u64 = 1_000;
/// Entries smaller than this are exempt from the ratio rule; the total size limit covers them.
pub const ZIP_RATIO_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Code storage per account, reported by GetAccountSettings.
pub const TOTAL_CODE_SIZE: u64 = 80_530_636_800;
/// Account concurrency limit reported until the scaling work makes it configurable.
pub const ACCOUNT_CONCURRENCY: u32 = 1_000;
/// Functions per ListFunctions page.
pub const LIST_PAGE_MAX: usize = 50;
/// Description length.
pub const DESCRIPTION_MAX_CHARS: usize = 256;
/// Handler length.
pub const HANDLER_MAX_CHARS: usize = 128;
/// Tags per function.
pub const TAGS_MAX: usize = 50;
