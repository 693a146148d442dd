//! Hostile packages are refused whole: no function, no stored blob, nothing written anywhere
//! outside the data directory.

use std::io::Write as _;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};

use crate::support::{error_of, files_below, zip_of, Harness, ROLE};

fn symlink_zip(link: &str, target: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("app.py", options).expect("entry");
    writer
        .write_all(b"def handler(e, c): pass\n")
        .expect("write");
    writer.add_symlink(link, target, options).expect("symlink");
    writer.finish().expect("finish").into_inner()
}

/// A zip whose one entry expands to 1 GiB of zeros (about 1 MB packed).
fn gigabyte_bomb() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    writer.start_file("bomb.bin", options).expect("entry");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        writer.write_all(&chunk).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

#[tokio::test]
async fn hostile_packages_are_rejected_and_nothing_escapes() {
    let h = Harness::start().await;
    let client = h.client();
    let marker = format!("nimbus-escape-{}", uuid::Uuid::new_v4());
    let outside = std::env::temp_dir().join(&marker);
    let slip = format!("../../../../../../../../{}", outside.display());
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "zip-slip",
            zip_of(&[(slip.as_str(), b"pwned", 0o644), ("app.py", b"", 0o644)]),
        ),
        (
            "relative climb",
            zip_of(&[("a/../../evil", b"pwned", 0o644)]),
        ),
        (
            "absolute path",
            zip_of(&[(outside.to_str().expect("utf-8"), b"pwned", 0o644)]),
        ),
        ("symlink to host file", symlink_zip("passwd", "/etc/passwd")),
        (
            "symlink escaping the package",
            symlink_zip("up", "../../../.."),
        ),
        (
            "duplicate entries",
            zip_of(&[("app.py", b"1", 0o644), ("./app.py", b"2", 0o644)]),
        ),
        ("1 GiB bomb", gigabyte_bomb()),
    ];
    for (what, zip) in hostile {
        let err = client
            .create_function()
            .function_name("victim")
            .runtime(Runtime::Python312)
            .handler("app.handler")
            .role(ROLE)
            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
            .send()
            .await
            .expect_err(what);
        assert_eq!(
            error_of(&err),
            ("InvalidParameterValueException".into(), 400),
            "{what}"
        );
    }
    assert!(
        !outside.exists(),
        "a package wrote outside the data directory"
    );
    let listed = client.list_functions().send().await.expect("list");
    assert!(listed.functions().is_empty());
    // The only thing beside the data directory is what the test made.
    let root_entries: Vec<_> = std::fs::read_dir(h.root.path())
        .expect("read root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(root_entries, vec![std::ffi::OsString::from("data")]);
    let stored: Vec<_> = files_below(&h.server.data_dir.join("blobs"))
        .into_iter()
        .filter(|p| p.extension().is_none() && p.components().count() == 3)
        .collect();
    assert!(
        stored.is_empty(),
        "refused packages were stored: {stored:?}"
    );
}
