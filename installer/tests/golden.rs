//! Golden files (tests/golden/*.txt): a manifest, a separator line, the expected output.
//! `validate-*` files expect the validation report; `plan-*` files the plan of a lab that
//! does not exist yet. Re-bless after an intended change with
//! `MIRRORLAB_BLESS=1 cargo test -p mirrorlab-installer --test golden`, then review the diff.

use installer::commands::{plan, Ctx};
use installer::manifest::load_str;
use installer::template::Inputs;
use installer::ui::Ui;
use std::path::{Path, PathBuf};

const SEPARATOR: &str = "==== expected ====";

fn inputs() -> Inputs {
    Inputs { env: [("LAB_QOS".to_string(), "1500".to_string())].into_iter().collect(), overrides: Default::default() }
}

fn run_case(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (manifest, _) = text
        .split_once(&format!("{SEPARATOR}\n"))
        .unwrap_or_else(|| panic!("{} has no `{SEPARATOR}` line", path.display()));
    let name = path.file_name().unwrap().to_str().unwrap();
    if name.starts_with("validate-") {
        match load_str("manifest.yaml", manifest, Path::new("."), &inputs()) {
            Ok(m) => format!("valid: lab {}, {} members\n", m.lab, m.members.len()),
            Err(problems) => format!("{problems}\n"),
        }
    } else {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("manifest.yaml");
        std::fs::write(&file, manifest).unwrap();
        let ctx = Ctx { base: dir.path().join("labs"), ui: Ui { json: true }, inputs: inputs(), target: None };
        let changes = plan(&ctx, &file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!ctx.base.exists(), "planning created the lab directory");
        changes.iter().map(|c| format!("{c}\n")).collect()
    }
}

#[test]
fn golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("MIRRORLAB_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the golden files are missing from {}", dir.display());
    let mut failures = vec![];
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let (manifest, expected) = text.split_once(&format!("{SEPARATOR}\n")).unwrap();
        let actual = run_case(path);
        if bless {
            std::fs::write(path, format!("{manifest}{SEPARATOR}\n{actual}")).unwrap();
        } else if actual != expected {
            failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
        }
    }
    assert!(failures.is_empty(), "golden files differ (MIRRORLAB_BLESS=1 re-blesses):\n{}", failures.join("\n"));
}

/// The shipped ECP lab (manifests/phonebook-ecp.yaml, which the README's ECP section
/// runs) plans as `golden/shipped/plan-phonebook-ecp.txt` says: data servers complete
/// first, then each app member's merge file, start, settings and namespaces.
#[test]
fn the_shipped_ecp_manifest_plans_its_app_members_after_the_mirror() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("../manifests/phonebook-ecp.yaml");
    let expected_file = root.join("tests/golden/shipped/plan-phonebook-ecp.txt");
    let dir = tempfile::tempdir().unwrap();
    let ctx = Ctx { base: dir.path().join("labs"), ui: Ui { json: true }, inputs: inputs(), target: None };
    let changes = plan(&ctx, &manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    assert!(!ctx.base.exists(), "planning created the lab directory");
    let actual: String = changes.iter().map(|c| format!("{c}\n")).collect();
    if std::env::var_os("MIRRORLAB_BLESS").is_some() {
        std::fs::create_dir_all(expected_file.parent().unwrap()).unwrap();
        std::fs::write(&expected_file, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
    assert_eq!(actual, expected, "{} (MIRRORLAB_BLESS=1 re-blesses)", expected_file.display());
}
