//! `mirrorlab images`: both lab images built through the Docker API from an in-memory
//! build context, so an installed `mirrorlab` needs no checkout. The Dockerfiles are
//! compiled in (context.rs) and the binaries are the ones next to the running `mirrorlab`
//! (a release build puts them all in one directory; the engine image itself holds them
//! all in /usr/local/bin). Every build is tagged with the version and `latest`.

pub mod context;

use crate::target::docker_api::DockerApi;
use context::{ContextError, IMAGES};
use std::path::{Path, PathBuf};

/// The version tag every build gets (the workspace's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The tag every build gets besides the version, and the one labs run by default.
pub const LATEST: &str = "latest";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Tags added to the version and `latest` (a test's unique tag).
    pub extra_tags: Vec<String>,
    /// Only `extra_tags`: a lab that builds the one tag it runs leaves the version and
    /// `latest` (what other labs may run) where they are.
    pub only_extra_tags: bool,
    /// Rebuild every layer.
    pub no_cache: bool,
}

/// One image built.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Built {
    /// `mirrorlab/engine`.
    pub repository: String,
    pub tags: Vec<String>,
    /// Bytes, as `docker image ls` reports them.
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("cannot tell where the running mirrorlab is, so where the binaries for the images are: {0}")]
    Exe(std::io::Error),
    #[error("{0}")]
    Docker(String),
    #[error("building {image} failed at `{step}`: {message}")]
    Build { image: String, step: String, message: String },
}

/// Whether `tag` is a Docker tag: up to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn is_valid_tag(tag: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    !tag.is_empty() && tag.len() <= 128 && !tag.starts_with(['.', '-']) && tag.chars().all(ok_char)
}

/// The tags of a build: the version, `latest`, then `extra`, each once.
pub fn tags(extra: &[String]) -> Vec<String> {
    let mut out = vec![VERSION.to_string(), LATEST.to_string()];
    for t in extra {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The directory of the running `mirrorlab`, where the images' binaries are taken from.
pub fn binaries_dir() -> Result<PathBuf, ImagesError> {
    let exe = std::env::current_exe().and_then(|e| e.canonicalize()).map_err(ImagesError::Exe)?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| ImagesError::Exe(std::io::Error::other(format!("{} has no parent directory", exe.display()))))
}

/// Builds both images from the binaries in `bin_dir`, tagged with `tags(&opts.extra_tags)`;
/// `progress(image, line)` gets each line of the builds' output. Both contexts are made
/// before anything is built, so a missing binary fails before the daemon is asked.
pub fn build(
    api: &DockerApi,
    bin_dir: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str, &str),
) -> Result<Vec<Built>, ImagesError> {
    let tags = if opts.only_extra_tags { opts.extra_tags.clone() } else { tags(&opts.extra_tags) };
    let contexts: Vec<_> =
        IMAGES.iter().map(|spec| Ok((spec, context::tar(spec, bin_dir)?))).collect::<Result<_, ContextError>>()?;
    let mut built = Vec::new();
    for (spec, tar) in contexts {
        let repository = format!("mirrorlab/{}", spec.name);
        let mut lines = |line: &str| progress(spec.name, line);
        built.push(build_one(api, &repository, spec.dockerfile_path, tar, &tags, opts.no_cache, &mut lines)?);
    }
    Ok(built)
}

/// Builds one image from its context, tagged `repository:<each tag>`.
fn build_one(
    api: &DockerApi,
    repository: &str,
    dockerfile: &str,
    tar: Vec<u8>,
    tags: &[String],
    no_cache: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Built, ImagesError> {
    let image = format!("{repository}:{}", tags[0]);
    // The step a failure belongs to: the daemon's error names only what went wrong.
    let mut step = String::from("sending the build context");
    let mut lines = |line: &str| {
        if line.starts_with("Step ") {
            step = line.to_string();
        }
        progress(line);
    };
    let result = api.build_image(&image, dockerfile, tar, no_cache, &mut lines);
    result.map_err(|message| ImagesError::Build { image: image.clone(), step: step.clone(), message })?;
    for t in &tags[1..] {
        api.tag_image(&image, repository, t).map_err(ImagesError::Docker)?;
    }
    let size = api
        .image_size(&image)
        .map_err(ImagesError::Docker)?
        .ok_or_else(|| ImagesError::Docker(format!("{image} was built but the daemon does not know it")))?;
    Ok(Built { repository: repository.to_string(), tags: tags.to_vec(), size })
}

/// Connects to the local daemon and builds both images from the binaries next to the
/// running `mirrorlab`.
pub fn build_here(opts: &Options, progress: &mut dyn FnMut(&str, &str)) -> Result<Vec<Built>, ImagesError> {
    let dir = binaries_dir()?;
    let api = DockerApi::connect().map_err(ImagesError::Docker)?;
    build(&api, &dir, opts, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_is_tagged_with_the_version_and_latest_then_the_extra_tags_once() {
        assert_eq!(tags(&[]), vec![VERSION.to_string(), "latest".to_string()]);
        let extra = vec!["t1".to_string(), "latest".to_string(), "t1".to_string()];
        assert_eq!(tags(&extra), vec![VERSION.to_string(), "latest".to_string(), "t1".to_string()]);
    }

    /// Needs a Docker daemon (without one it says so and returns); creates nothing: the
    /// build fails at its second step and intermediate containers are always removed.
    #[test]
    fn a_failed_build_step_is_reported_with_the_step_and_the_daemons_message() {
        let api = match DockerApi::connect() {
            Ok(api) => api,
            Err(e) => {
                println!("not run: {e}");
                return;
            }
        };
        let dockerfile = b"FROM scratch\nCOPY absent-file /absent\n";
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(dockerfile.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &dockerfile[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let tag = format!("failing{}", std::process::id());
        let mut seen = Vec::new();
        let e = build_one(&api, "mirrorlab-test/none", "Dockerfile", tar, std::slice::from_ref(&tag), true, &mut |l| {
            seen.push(l.to_string())
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "building mirrorlab-test/none:{tag} failed at `Step 2/2 : COPY absent-file /absent`: "
            )),
            "{msg}"
        );
        assert!(msg.contains("absent-file"), "the daemon's message names the file: {msg}");
        assert!(seen.iter().any(|l| l.starts_with("Step 1/2 : FROM scratch")), "progress lines: {seen:?}");
    }

    #[test]
    fn tags_follow_dockers_grammar() {
        for ok in ["latest", "0.1.0", "mlt123", "a_b-c.d"] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a:b", "a/b", "a b", &"x".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
