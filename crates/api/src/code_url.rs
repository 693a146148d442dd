//! Short-lived download links for code packages, the way S3 presigned URLs serve `Code.Location`.
//!
//! A link names the function and the package digest, an expiry time and an HMAC over the three;
//! the key is random per server process, so links die with the process as well as at expiry.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a link stays valid, as on AWS.
pub(crate) const LINK_LIFETIME_SECS: i64 = 600;

/// Signs and verifies download links.
#[derive(Clone)]
pub struct CodeUrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for CodeUrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeUrlSigner(..)")
    }
}

impl CodeUrlSigner {
    /// A signer with a fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { key }
    }

    fn mac(&self, function: &str, sha256_hex: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(function.as_bytes());
        mac.update(b"\n");
        mac.update(sha256_hex.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Path and query of a link to the package, valid until `now + LINK_LIFETIME_SECS`.
    pub fn sign(&self, function: &str, sha256_hex: &str, now: i64) -> String {
        let expires = now + LINK_LIFETIME_SECS;
        let signature = hex::encode(
            self.mac(function, sha256_hex, expires)
                .finalize()
                .into_bytes(),
        );
        format!("/_nimbus/code/{function}/{sha256_hex}.zip?Expires={expires}&Signature={signature}")
    }

    /// Whether a link's signature is genuine and it has not expired at `now`.
    pub fn verify(
        &self,
        function: &str,
        sha256_hex: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        now <= expires
            && self
                .mac(function, sha256_hex, expires)
                .verify_slice(&signature)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_until_they_expire_and_not_across_keys() {
        let signer = CodeUrlSigner::random();
        let link = signer.sign("f", "ab", 1000);
        let signature = link.rsplit("Signature=").next().expect("has signature");
        let expires = 1000 + LINK_LIFETIME_SECS;
        assert!(signer.verify("f", "ab", expires, signature, 1000));
        assert!(!signer.verify("f", "ab", expires, signature, expires + 1));
        assert!(!signer.verify("g", "ab", expires, signature, 1000));
        assert!(!CodeUrlSigner::random().verify("f", "ab", expires, signature, 1000));
        assert!(!signer.verify("f", "ab", expires, "zz", 1000));
    }
}
