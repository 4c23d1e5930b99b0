//! The workspace as `cargo metadata` describes it, plus a line-level TOML reader for the
//! few manifest facts metadata does not show (such as `version.workspace = true`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::{self, Value};

/// One workspace member.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) manifest_path: PathBuf,
    pub(crate) description: Option<String>,
    pub(crate) license: Option<String>,
    pub(crate) readme: Option<String>,
    /// `publish = false` in the manifest (metadata shows it as an empty registry list).
    pub(crate) publishable: bool,
    pub(crate) dependencies: Vec<Dependency>,
}

impl Package {
    pub(crate) fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// A dependency as a member's manifest declares it.
#[derive(Debug, Clone)]
pub(crate) struct Dependency {
    pub(crate) name: String,
    /// The version requirement; `*` when the manifest gives only a path.
    pub(crate) req: String,
    /// `None` for normal dependencies, else `dev` or `build`.
    pub(crate) kind: Option<String>,
    /// Set for path dependencies.
    pub(crate) path: Option<PathBuf>,
}

/// The workspace: its root, target directory and members in manifest order.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    pub(crate) target_dir: PathBuf,
    pub(crate) packages: Vec<Package>,
}

impl Workspace {
    /// Ask `cargo metadata` about the workspace whose root is `root`.
    pub(crate) fn load(root: &Path) -> Result<Workspace, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| "cargo metadata printed non-UTF-8 output".to_owned())?;
        Workspace::from_metadata(&text)
    }

    pub(crate) fn from_metadata(text: &str) -> Result<Workspace, String> {
        let doc = json::parse(text).map_err(|e| format!("cargo metadata: {e}"))?;
        let path_of = |key: &str| {
            doc.get(key)
                .and_then(Value::as_str)
                .map(PathBuf::from)
                .ok_or_else(|| format!("cargo metadata has no `{key}`"))
        };
        let root = path_of("workspace_root")?;
        let target_dir = path_of("target_directory")?;
        let members: Vec<&str> = doc
            .get("workspace_members")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut packages = Vec::new();
        for package in doc
            .get("packages")
            .and_then(Value::as_array)
            .unwrap_or_default()
        {
            let id = package.get("id").and_then(Value::as_str).unwrap_or("");
            if !members.contains(&id) {
                continue;
            }
            packages.push(read_package(package)?);
        }
        Ok(Workspace {
            root,
            target_dir,
            packages,
        })
    }

    /// Members that `cargo publish` would upload.
    pub(crate) fn publishable(&self) -> impl Iterator<Item = &Package> {
        self.packages.iter().filter(|p| p.publishable)
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }
}

fn read_package(package: &Value) -> Result<Package, String> {
    let text = |key: &str| {
        package
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.trim().is_empty())
    };
    let name = text("name").ok_or("a package in cargo metadata has no name")?;
    let manifest_path = text("manifest_path")
        .map(PathBuf::from)
        .ok_or_else(|| format!("package {name} has no manifest_path"))?;
    let publishable = match package.get("publish") {
        None | Some(Value::Null) => true,
        Some(Value::Array(registries)) => !registries.is_empty(),
        Some(_) => true,
    };
    let dependencies = package
        .get("dependencies")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .map(|d| Dependency {
            name: d
                .get("rename")
                .and_then(Value::as_str)
                .or(d.get("name").and_then(Value::as_str))
                .unwrap_or("")
                .to_owned(),
            req: d
                .get("req")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_owned(),
            kind: d.get("kind").and_then(Value::as_str).map(str::to_owned),
            path: d.get("path").and_then(Value::as_str).map(PathBuf::from),
        })
        .collect();
    Ok(Package {
        version: text("version").unwrap_or_default(),
        description: text("description"),
        license: text("license").or_else(|| text("license_file")),
        readme: text("readme"),
        name,
        manifest_path,
        publishable,
        dependencies,
    })
}

/// The `key = value` lines of one `[section]` of a TOML file, comments and blanks dropped.
///
/// Enough for the flat sections of our manifests; not a TOML parser.
pub(crate) fn toml_section<'a>(text: &'a str, section: &str) -> Vec<(&'a str, &'a str)> {
    let header = format!("[{section}]");
    let mut inside = false;
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if line.starts_with('[') {
            inside = line == header;
            continue;
        }
        if !inside || line.is_empty() {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            entries.push((key.trim(), value.trim()));
        }
    }
    entries
}

fn strip_comment(line: &str) -> &str {
    // A '#' inside a string would be cut too; our manifests keep none in the keys we read.
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The string value of `key` inside an inline table or a plain string value:
/// `{ path = "x", version = "0.1.0" }` gives `Some("0.1.0")` for `version`.
pub(crate) fn toml_string_field<'a>(value: &'a str, key: &str) -> Option<&'a str> {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('{') {
        let inner = inner.strip_suffix('}').unwrap_or(inner);
        inner.split(',').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == key).then(|| unquote(v.trim()))?
        })
    } else {
        None
    }
}

/// `"text"` -> `text`.
pub(crate) fn unquote(value: &str) -> Option<&str> {
    value.strip_prefix('"')?.strip_suffix('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str = r#"{
      "packages": [
        {"name": "otlp-core", "version": "0.1.0", "id": "path+file:///w/crates/otlp-core#0.1.0",
         "license": "MIT OR Apache-2.0", "license_file": null, "description": "core",
         "manifest_path": "/w/crates/otlp-core/Cargo.toml", "readme": "README.md",
         "publish": null,
         "targets": [{"kind": ["lib"], "name": "otlp_core"}],
         "dependencies": [{"name": "prost", "req": "^0.14.6", "kind": null}]},
        {"name": "xtask", "version": "0.1.0", "id": "path+file:///w/xtask#0.1.0",
         "license": null, "description": "", "manifest_path": "/w/xtask/Cargo.toml",
         "publish": [], "targets": [{"kind": ["bin"], "name": "xtask"}],
         "dependencies": [{"name": "otlp-core", "req": "*", "kind": "dev",
                           "path": "/w/crates/otlp-core"}]}
      ],
      "workspace_members": ["path+file:///w/crates/otlp-core#0.1.0", "path+file:///w/xtask#0.1.0"],
      "target_directory": "/w/target",
      "workspace_root": "/w"
    }"#;

    #[test]
    fn reads_members_from_metadata() {
        let ws = Workspace::from_metadata(METADATA).unwrap();
        assert_eq!(ws.root, PathBuf::from("/w"));
        assert_eq!(ws.target_dir, PathBuf::from("/w/target"));
        let names: Vec<_> = ws.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["otlp-core", "xtask"]);
        let core = ws.find("otlp-core").unwrap();
        assert!(core.publishable);
        assert_eq!(core.dir(), Path::new("/w/crates/otlp-core"));
        let xtask = ws.find("xtask").unwrap();
        assert!(!xtask.publishable);
        assert_eq!(
            xtask.description, None,
            "blank descriptions count as missing"
        );
        assert_eq!(xtask.dependencies[0].kind.as_deref(), Some("dev"));
        assert_eq!(ws.publishable().count(), 1);
    }

    #[test]
    fn reads_toml_sections_and_inline_tables() {
        let toml = r#"
[workspace.package]
version = "0.1.0" # the release version

[workspace.dependencies]
# ours
otlp-core = { path = "crates/otlp-core", version = "0.1.0" }
prost = "0.14.6"

[package]
version.workspace = true
"#;
        let deps = toml_section(toml, "workspace.dependencies");
        assert_eq!(deps.len(), 2);
        assert_eq!(deps[0].0, "otlp-core");
        assert_eq!(toml_string_field(deps[0].1, "version"), Some("0.1.0"));
        assert_eq!(
            toml_string_field(deps[0].1, "path"),
            Some("crates/otlp-core")
        );
        assert_eq!(toml_string_field(deps[1].1, "version"), None);
        let ws = toml_section(toml, "workspace.package");
        assert_eq!(unquote(ws[0].1), Some("0.1.0"));
        assert_eq!(
            toml_section(toml, "package"),
            [("version.workspace", "true")]
        );
    }
}
