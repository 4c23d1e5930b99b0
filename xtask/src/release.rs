//! `cargo xtask release`: check that every publishable crate is ready, then dry-run
//! `cargo publish --workspace`.
//!
//! Checked for each publishable member (all of them live in `crates/`): the version comes
//! from the workspace (`version.workspace = true`) and equals it; a description, a license,
//! a README.md and a CHANGELOG.md with an `## Unreleased` section exist; every normal or
//! build dependency on a sibling crate carries a version requirement (crates.io rejects
//! path-only dependencies). In the root manifest every sibling in
//! `[workspace.dependencies]` has a `path` and `version = "<workspace version>"`.
//!
//! `cargo publish --workspace --dry-run` (cargo 1.90+) packages the members in dependency
//! order and verifies each against a local overlay of the packages before it, so siblings
//! that are not on crates.io yet resolve.

use std::fs;
use std::path::Path;

use crate::Failure;
use crate::step::{Output, Runner, Step, read_lossy};
use crate::workspace::{Package, Workspace, toml_section, toml_string_field, unquote};

pub(crate) fn run(ws: &Workspace) -> Result<(), Failure> {
    let root_manifest = read_lossy(&ws.root.join("Cargo.toml"));
    let problems = check(ws, &root_manifest);
    let publishable: Vec<&str> = ws.publishable().map(|p| p.name.as_str()).collect();
    println!(
        "release: checking {} publishable crates: {}",
        publishable.len(),
        publishable.join(", ")
    );
    if !problems.is_empty() {
        for problem in &problems {
            println!("  - {problem}");
        }
        return Err(format!("{} release problem(s); fix them first", problems.len()).into());
    }
    println!("release: manifests, READMEs and CHANGELOGs are in order");

    let mut runner = Runner::new(&ws.root, ws.target_dir.join("xtask"), Output::Echo, 0);
    // The dry run verifies each crate against the others unpacked from a local registry.
    // Cargo treats a registry crate's version as immutable, so artifacts built for our
    // crates at the same version by an earlier run would be reused even though the code
    // changed. Build in a target dir of its own and clean our crates out of it first.
    let publish_target = ws.target_dir.join("xtask").join("publish");
    let publish_target = publish_target.to_string_lossy().into_owned();
    let _ = std::fs::remove_dir_all(ws.target_dir.join("package"));
    let mut clean = vec!["clean".to_owned()];
    for name in &publishable {
        clean.push("-p".to_owned());
        clean.push((*name).to_owned());
    }
    clean.push("--target-dir".to_owned());
    clean.push(publish_target.clone());
    if std::path::Path::new(&publish_target).exists() {
        runner.run("publish-clean", &Step::cargo(clean))?;
    }
    let publish = Step::cargo([
        "publish",
        "--workspace",
        "--dry-run",
        "--allow-dirty",
        "--target-dir",
        &publish_target,
    ]);
    let finished = runner.run("publish-dry-run", &publish)?;
    if !finished.success {
        return Err("cargo publish --workspace --dry-run failed"
            .to_owned()
            .into());
    }
    println!("release: dry run passed for {}", publishable.join(", "));
    Ok(())
}

/// Every release problem found, as sentences naming the crate and the fix.
pub(crate) fn check(ws: &Workspace, root_manifest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let version = toml_section(root_manifest, "workspace.package")
        .into_iter()
        .find(|(k, _)| *k == "version")
        .and_then(|(_, v)| unquote(v));
    let Some(version) = version else {
        problems.push("root Cargo.toml: [workspace.package] has no version".to_owned());
        return problems;
    };

    let crates_dir = ws.root.join("crates");
    for package in ws.publishable() {
        if !package.dir().starts_with(&crates_dir) {
            problems.push(format!(
                "{}: publishable but not under crates/; set `publish = false`",
                package.name
            ));
            continue;
        }
        check_package(package, version, ws, &mut problems);
    }

    for (key, value) in toml_section(root_manifest, "workspace.dependencies") {
        let Some(member) = ws.find(key) else {
            continue;
        };
        if !member.publishable {
            continue;
        }
        if toml_string_field(value, "path").is_none() {
            problems.push(format!(
                "root Cargo.toml: [workspace.dependencies] {key} has no `path`"
            ));
        }
        match toml_string_field(value, "version") {
            Some(v) if v == version => {}
            Some(v) => problems.push(format!(
                "root Cargo.toml: [workspace.dependencies] {key} has version \"{v}\", \
                 the workspace is \"{version}\""
            )),
            None => problems.push(format!(
                "root Cargo.toml: [workspace.dependencies] {key} needs version = \"{version}\""
            )),
        }
    }
    problems
}

fn check_package(package: &Package, version: &str, ws: &Workspace, problems: &mut Vec<String>) {
    let name = &package.name;
    let manifest = read_lossy(&package.manifest_path);
    let inherits = toml_section(&manifest, "package")
        .iter()
        .any(|(k, v)| *k == "version.workspace" && *v == "true");
    if !inherits {
        problems.push(format!(
            "{name}: Cargo.toml needs `version.workspace = true`"
        ));
    }
    if package.version != version {
        problems.push(format!(
            "{name}: version {} differs from the workspace version {version}",
            package.version
        ));
    }
    if package.description.is_none() {
        problems.push(format!("{name}: Cargo.toml has no description"));
    }
    if package.license.is_none() {
        problems.push(format!(
            "{name}: Cargo.toml has no license (use `license.workspace = true`)"
        ));
    }

    let dir = package.dir();
    if !dir.join("README.md").is_file() {
        problems.push(format!("{name}: README.md is missing"));
    }
    if let Some(readme) = package.readme.as_deref()
        && readme != "README.md"
        && !dir.join(readme).is_file()
    {
        problems.push(format!(
            "{name}: Cargo.toml names readme {readme}, which is missing"
        ));
    }
    check_changelog(name, &dir.join("CHANGELOG.md"), problems);

    for dep in &package.dependencies {
        if dep.path.is_none() || dep.kind.as_deref() == Some("dev") {
            // cargo strips path-only dev-dependencies when packaging.
            continue;
        }
        let sibling_publishable = ws.find(&dep.name).is_none_or(|p| p.publishable);
        if !sibling_publishable {
            problems.push(format!(
                "{name}: depends on {}, which has `publish = false`",
                dep.name
            ));
        } else if dep.req == "*" {
            problems.push(format!(
                "{name}: dependency {} has a path but no version; use `{} = {{ workspace = true }}`",
                dep.name, dep.name
            ));
        } else if !dep.req.contains(version) {
            problems.push(format!(
                "{name}: dependency {} requires {}, the workspace is {version}",
                dep.name, dep.req
            ));
        }
    }
}

fn check_changelog(name: &str, path: &Path, problems: &mut Vec<String>) {
    let Ok(text) = fs::read_to_string(path) else {
        problems.push(format!(
            "{name}: CHANGELOG.md is missing (start it with an `## Unreleased` section)"
        ));
        return;
    };
    let has_unreleased = text.lines().any(|line| {
        let line = line.trim();
        line.strip_prefix("## ")
            .map(|title| {
                title
                    .trim()
                    .trim_matches(['[', ']'])
                    .eq_ignore_ascii_case("unreleased")
            })
            .unwrap_or(false)
    });
    if !has_unreleased {
        problems.push(format!(
            "{name}: CHANGELOG.md has no `## Unreleased` section"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn crate_dir(root: &Path, name: &str, manifest: &str, changelog: Option<&str>) {
        let dir = root.join("crates").join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.join("README.md"), "# readme\n").unwrap();
        if let Some(changelog) = changelog {
            fs::write(dir.join("CHANGELOG.md"), changelog).unwrap();
        }
    }

    fn metadata(root: &Path) -> String {
        let r = root.display();
        format!(
            r#"{{"packages":[
              {{"name":"a","version":"0.1.0","id":"a","license":"MIT","description":"A",
                "manifest_path":"{r}/crates/a/Cargo.toml","readme":"README.md","publish":null,
                "targets":[],"dependencies":[]}},
              {{"name":"b","version":"0.2.0","id":"b","license":null,"description":null,
                "manifest_path":"{r}/crates/b/Cargo.toml","readme":null,"publish":null,
                "targets":[],"dependencies":[
                  {{"name":"a","req":"*","kind":null,"path":"{r}/crates/a"}},
                  {{"name":"a","req":"*","kind":"dev","path":"{r}/crates/a"}}]}},
              {{"name":"xtask","version":"0.1.0","id":"x","license":null,"description":null,
                "manifest_path":"{r}/xtask/Cargo.toml","publish":[],"targets":[],"dependencies":[]}}
            ],"workspace_members":["a","b","x"],"target_directory":"{r}/target","workspace_root":"{r}"}}"#
        )
    }

    #[test]
    fn finds_every_problem_and_accepts_a_ready_crate() {
        let root: PathBuf =
            std::env::temp_dir().join(format!("xtask-release-test-{}", std::process::id()));
        crate_dir(
            &root,
            "a",
            "[package]\nname = \"a\"\nversion.workspace = true\n",
            Some("# Changelog\n\n## [Unreleased]\n\n- first\n"),
        );
        crate_dir(
            &root,
            "b",
            "[package]\nname = \"b\"\nversion = \"0.2.0\"\n",
            Some("# Changelog\n\n## 0.1.0\n"),
        );
        let ws = Workspace::from_metadata(&metadata(&root)).unwrap();
        let root_manifest = "\
[workspace.package]
version = \"0.1.0\"

[workspace.dependencies]
a = { path = \"crates/a\", version = \"0.1.0\" }
b = { path = \"crates/b\" }
xtask = { path = \"xtask\" }
";
        let problems = check(&ws, root_manifest);
        fs::remove_dir_all(&root).unwrap();

        assert!(
            problems.iter().all(|p| !p.starts_with("a:")),
            "{problems:#?}"
        );
        for expected in [
            "b: Cargo.toml needs `version.workspace = true`",
            "b: version 0.2.0 differs",
            "b: Cargo.toml has no description",
            "b: Cargo.toml has no license",
            "b: CHANGELOG.md has no `## Unreleased` section",
            "b: dependency a has a path but no version",
            "[workspace.dependencies] b needs version = \"0.1.0\"",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "missing {expected:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), 7, "{problems:#?}");
    }
}
