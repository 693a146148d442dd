//! The layering of the workspace: library crates depend on `nimbus-core` only, and
//! only the binary names concrete implementations. Checked against the manifests, so a stray
//! edge fails the build's tests rather than a review.

use std::path::Path;

/// Workspace crates each crate may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("store", &["nimbus-core"]),
    ("api", &["nimbus-core"]),
    ("sandbox", &["nimbus-core"]),
    ("scheduler", &["nimbus-core"]),
    ("triggers", &["nimbus-core"]),
    (
        "nimbus",
        &[
            "nimbus-core",
            "nimbus-store",
            "nimbus-api",
            "nimbus-sandbox",
            "nimbus-scheduler",
            "nimbus-triggers",
        ],
    ),
];

fn workspace_deps(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("nimbus-") {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            deps.push(name.to_owned());
        }
    }
    deps
}

#[test]
fn crates_depend_only_on_what_the_design_allows() {
    let crates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates_dir).expect("read crates/") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let allowed = ALLOWED
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(_, deps)| *deps)
            .unwrap_or_else(|| panic!("crates/{name} is not in the layering table"));
        for dep in workspace_deps(&manifest) {
            assert!(
                allowed.contains(&dep.as_str()),
                "crates/{name} depends on {dep}, which the layering does not allow"
            );
        }
        checked += 1;
    }
    assert!(checked >= 4, "the crates were found");
}
