//! The images' build context, made in memory: the Dockerfiles compiled in from
//! images/*/Dockerfile (the very files `docker build` reads, so there is one source of
//! truth) and, at the paths their COPY instructions name, the release binaries from a
//! directory and the few checkout files embedded here. The COPY sources are read from the
//! Dockerfiles themselves, so a Dockerfile that starts copying something new fails here
//! (and in the unit tests) instead of building an image without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the Dockerfiles COPY the release binaries from: the build context is the
/// repository root and the target is explicit (.cargo/config.toml).
pub const RELEASE_DIR: &str = "target/x86_64-unknown-linux-gnu/release";

/// One image: its name under `mirrorlab/` and its Dockerfile.
#[derive(Clone, Copy, Debug)]
pub struct ImageSpec {
    pub name: &'static str,
    /// The Dockerfile's path in the checkout, which is also its path in the context.
    pub dockerfile_path: &'static str,
    pub dockerfile: &'static str,
}

/// Both images, in build order.
pub const IMAGES: [ImageSpec; 2] = [
    ImageSpec {
        name: "engine",
        dockerfile_path: "images/engine/Dockerfile",
        dockerfile: include_str!("../../../images/engine/Dockerfile"),
    },
    ImageSpec {
        name: "arbiter",
        dockerfile_path: "images/arbiter/Dockerfile",
        dockerfile: include_str!("../../../images/arbiter/Dockerfile"),
    },
];

/// The checkout files the Dockerfiles COPY besides binaries, by their path in the checkout.
const EMBEDDED: &[(&str, &[u8])] = &[("images/engine/data/.keep", include_bytes!("../../../images/engine/data/.keep"))];

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(
        "{} is missing: the {image} image ships it, taken from the directory of the running mirrorlab; build the release binaries with `cargo build --release --bins` and run {RELEASE_DIR}/mirrorlab images (an installed mirrorlab needs engine, agent and mirrorlab-init installed beside it)",
        path.display()
    )]
    MissingBinary { image: String, path: PathBuf },
    #[error("cannot read {} for the {image} image: {source}", path.display())]
    Read { image: String, path: PathBuf, source: std::io::Error },
    #[error("{dockerfile}: {what}")]
    Dockerfile { dockerfile: String, what: String },
}

/// A file of the build context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A release binary of that name, from the binaries' directory.
    Binary(String),
    /// A file embedded here (its checkout path).
    Embedded(&'static str),
}

/// The Dockerfile's logical lines (continuations joined, comments and blanks dropped).
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The source paths of every COPY, with `${NAME}` and `$NAME` expanded from the ARG
/// defaults (the only values a build from this context has).
pub fn copy_sources(spec: &ImageSpec) -> Result<Vec<String>, ContextError> {
    let bad = |what: String| ContextError::Dockerfile { dockerfile: spec.dockerfile_path.to_string(), what };
    let mut args: Vec<(String, String)> = Vec::new();
    let mut sources = Vec::new();
    for ins in instructions(spec.dockerfile) {
        let mut words = ins.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match keyword.as_str() {
            "ARG" => {
                for a in rest {
                    if let Some((name, value)) = a.split_once('=') {
                        args.push((name.to_string(), value.to_string()));
                    }
                }
            }
            "COPY" | "ADD" => {
                if rest.first().is_some_and(|w| w.starts_with('[')) {
                    return Err(bad(format!("`{ins}`: the JSON form of {keyword} is not supported here")));
                }
                let operands: Vec<&str> = rest.into_iter().filter(|w| !w.starts_with("--")).collect();
                let Some((_dest, srcs)) = operands.split_last().filter(|(_, s)| !s.is_empty()) else {
                    return Err(bad(format!("`{ins}` names no source")));
                };
                for s in srcs {
                    let mut s = s.to_string();
                    // Longest names first, so `$BIN` never eats the head of `$BINARY`.
                    let mut by_length = args.clone();
                    by_length.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
                    for (name, value) in &by_length {
                        s = s.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
                    }
                    if s.contains('$') {
                        return Err(bad(format!("`{ins}`: `{s}` names a variable with no ARG default")));
                    }
                    sources.push(s);
                }
            }
            _ => {}
        }
    }
    Ok(sources)
}

/// What the context holds for one COPY source: a binary or the embedded files under it.
fn resolve(spec: &ImageSpec, source: &str) -> Result<Vec<Source>, ContextError> {
    let trimmed = source.trim_end_matches('/');
    if let Some(bin) = trimmed.strip_prefix(RELEASE_DIR).and_then(|b| b.strip_prefix('/')) {
        if !bin.is_empty() && !bin.contains('/') {
            return Ok(vec![Source::Binary(bin.to_string())]);
        }
    }
    let under = format!("{trimmed}/");
    let files: Vec<Source> = EMBEDDED
        .iter()
        .filter(|(p, _)| *p == trimmed || p.starts_with(&under))
        .map(|(p, _)| Source::Embedded(p))
        .collect();
    if files.is_empty() {
        return Err(ContextError::Dockerfile {
            dockerfile: spec.dockerfile_path.to_string(),
            what: format!(
                "COPY `{source}` is neither a release binary ({RELEASE_DIR}/NAME) nor a file the in-memory build context embeds: add it to EMBEDDED in installer/src/images/context.rs"
            ),
        });
    }
    Ok(files)
}

/// Every file of the image's context besides the Dockerfile, by its path in the context.
pub fn files(spec: &ImageSpec) -> Result<BTreeMap<String, Source>, ContextError> {
    let mut out = BTreeMap::new();
    for source in copy_sources(spec)? {
        for f in resolve(spec, &source)? {
            let path = match &f {
                Source::Binary(b) => format!("{RELEASE_DIR}/{b}"),
                Source::Embedded(p) => p.to_string(),
            };
            out.insert(path, f);
        }
    }
    Ok(out)
}

/// The build context of `spec` as a tar archive: the Dockerfile, then each file the
/// Dockerfile copies, binaries read from `bin_dir` (mode 0755), embedded files 0644.
pub fn tar(spec: &ImageSpec, bin_dir: &Path) -> Result<Vec<u8>, ContextError> {
    let files = files(spec)?;
    let mut contents = Vec::with_capacity(files.len());
    for (path, source) in &files {
        let (bytes, mode) = match source {
            Source::Binary(b) => {
                let file = bin_dir.join(b);
                let image = format!("mirrorlab/{}", spec.name);
                let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ContextError::MissingBinary { image, path: file.clone() },
                    _ => ContextError::Read { image, path: file.clone(), source: e },
                })?;
                (bytes, 0o755)
            }
            Source::Embedded(p) => {
                let bytes = EMBEDDED.iter().find(|(e, _)| e == p).map(|(_, b)| b.to_vec()).unwrap_or_default();
                (bytes, 0o644)
            }
        };
        contents.push((path.as_str(), bytes, mode));
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mtime = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let dockerfile = (spec.dockerfile_path, spec.dockerfile.as_bytes().to_vec(), 0o644);
    for (path, bytes, mode) in std::iter::once(dockerfile).chain(contents) {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        // Writing to a Vec fails only on a path tar cannot store; ours are short and ASCII.
        builder.append_data(&mut header, path, bytes.as_slice()).expect("a context path fits a tar header");
    }
    Ok(builder.into_inner().expect("finishing an in-memory tar"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const BINARIES: [&str; 4] = ["engine", "agent", "mirrorlab-init", "mirrorlab"];

    fn bin_dir(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::write(dir.path().join(n), format!("binary {n}")).unwrap();
        }
        dir
    }

    /// (path, mode, contents) of every entry.
    fn entries(tar: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (path, mode, body)
            })
            .collect()
    }

    fn image(name: &str) -> ImageSpec {
        *IMAGES.iter().find(|i| i.name == name).unwrap()
    }

    #[test]
    fn the_engine_context_holds_the_dockerfile_and_exactly_what_it_copies() {
        let dir = bin_dir(&BINARIES);
        let spec = image("engine");
        let list = entries(&tar(&spec, dir.path()).unwrap());
        let got: Vec<(&str, u32)> = list.iter().map(|(p, m, _)| (p.as_str(), *m)).collect();
        assert_eq!(
            got,
            vec![
                ("images/engine/Dockerfile", 0o644),
                ("images/engine/data/.keep", 0o644),
                ("target/x86_64-unknown-linux-gnu/release/agent", 0o755),
                ("target/x86_64-unknown-linux-gnu/release/engine", 0o755),
                ("target/x86_64-unknown-linux-gnu/release/mirrorlab", 0o755),
                ("target/x86_64-unknown-linux-gnu/release/mirrorlab-init", 0o755),
            ]
        );
        // The contents are the files themselves: the Dockerfile from the checkout, each
        // binary from the directory.
        assert_eq!(
            list[0].2,
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../images/engine/Dockerfile")).unwrap()
        );
        assert_eq!(list[4].2, b"binary mirrorlab");
    }

    #[test]
    fn the_arbiter_context_holds_its_dockerfile_and_the_agent_only() {
        let dir = bin_dir(&BINARIES);
        let list = entries(&tar(&image("arbiter"), dir.path()).unwrap());
        let got: Vec<(&str, u32)> = list.iter().map(|(p, m, _)| (p.as_str(), *m)).collect();
        assert_eq!(
            got,
            vec![("images/arbiter/Dockerfile", 0o644), ("target/x86_64-unknown-linux-gnu/release/agent", 0o755)]
        );
    }

    #[test]
    fn the_engine_dockerfile_copies_the_installer_next_to_the_engine() {
        let sources = copy_sources(&image("engine")).unwrap();
        assert!(sources.contains(&format!("{RELEASE_DIR}/mirrorlab")), "{sources:?}");
    }

    #[test]
    fn a_missing_binary_is_named_with_the_command_that_builds_it() {
        let dir = bin_dir(&["engine", "agent", "mirrorlab"]);
        let e = tar(&image("engine"), dir.path()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&dir.path().join("mirrorlab-init").display().to_string()), "{msg}");
        assert!(msg.contains("cargo build --release --bins"), "{msg}");
        assert!(msg.contains("mirrorlab/engine"), "{msg}");
    }

    #[test]
    fn a_copy_the_context_cannot_provide_is_refused_with_the_dockerfile_named() {
        let spec = ImageSpec {
            name: "x",
            dockerfile_path: "images/x/Dockerfile",
            dockerfile: "FROM scratch\nCOPY images/x/extra.conf /etc/\n",
        };
        let msg = files(&spec).unwrap_err().to_string();
        assert!(msg.starts_with("images/x/Dockerfile: COPY `images/x/extra.conf`"), "{msg}");
    }

    #[test]
    fn copy_sources_expand_arg_defaults_and_join_continued_lines() {
        let spec = ImageSpec {
            name: "x",
            dockerfile_path: "Dockerfile",
            dockerfile: "# c\nARG BIN=t/r\nARG BINARY=no\nCOPY --chown=1:1 ${BIN}/a \\\n  $BIN/b /usr/local/bin/\nCOPY $BINARY /x\n",
        };
        assert_eq!(copy_sources(&spec).unwrap(), vec!["t/r/a", "t/r/b", "no"]);
        let spec = ImageSpec { name: "x", dockerfile_path: "Dockerfile", dockerfile: "COPY $UNSET/a /x\n" };
        assert!(copy_sources(&spec).unwrap_err().to_string().contains("no ARG default"));
    }
}
