//! Where the demo keeps things under its state directory. Every run starts from an empty state
//! (so an old hub, join files or Works never leak into a new run); a directory is cleared only
//! when it carries the demo's marker file, never one the user filled with something else.

use std::path::{Path, PathBuf};

use super::DemoError;

/// Name of the file that marks a directory as the demo's own.
pub const MARKER: &str = ".kruise-demo-state";

/// The state directory and the paths the demo uses inside it.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Absolute path (children get absolute paths).
    root: PathBuf,
    /// The path as the user gave it (messages show paths under it).
    shown: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::StateDir {
        path: path.to_path_buf(),
        source,
    }
}

impl Layout {
    /// Creates or clears `dir` and marks it as the demo's.
    pub fn prepare(dir: &Path) -> Result<Layout, DemoError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        if !entries.is_empty() && !dir.join(MARKER).is_file() {
            return Err(DemoError::ForeignStateDir {
                path: dir.to_path_buf(),
            });
        }
        for entry in entries {
            let removed = if entry.is_dir() {
                std::fs::remove_dir_all(&entry)
            } else {
                std::fs::remove_file(&entry)
            };
            removed.map_err(io(&entry))?;
        }
        let marker = dir.join(MARKER);
        std::fs::write(
            &marker,
            "State of `kruise-local demo`; cleared when the demo starts.\n",
        )
        .map_err(io(&marker))?;
        let root = dir.canonicalize().map_err(io(dir))?;
        Ok(Layout {
            root,
            shown: dir.to_path_buf(),
        })
    }

    /// The state directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The hub's replicas, PKI and logs.
    pub fn hub_dir(&self) -> PathBuf {
        self.root.join("hub")
    }

    /// The admin kubeconfig of the hub (its first replica).
    pub fn hub_kubeconfig(&self) -> PathBuf {
        self.root.join("hub.kubeconfig")
    }

    /// A member cluster's state and logs.
    pub fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.root.join(cluster)
    }

    /// A member cluster's admin kubeconfig.
    pub fn cluster_kubeconfig(&self, cluster: &str) -> PathBuf {
        self.root.join(format!("{cluster}.kubeconfig"))
    }

    /// The join file `kruise-hub cluster add` writes for a member's agent.
    pub fn join_file(&self, cluster: &str) -> PathBuf {
        self.cluster_dir(cluster).join("hub-join.yaml")
    }

    /// `path` as the user would type it: under the state directory as they named it.
    pub fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rest) if rest.as_os_str().is_empty() => self.shown.display().to_string(),
            Ok(rest) => self.shown.join(rest).display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_its_own_directory_and_refuses_a_foreign_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("demo");
        let layout = Layout::prepare(&dir).expect("a new directory");
        std::fs::create_dir_all(layout.cluster_dir("member-r1")).expect("mkdir");
        std::fs::write(layout.hub_kubeconfig(), "old").expect("write");
        let again = Layout::prepare(&dir).expect("the demo's own directory");
        assert!(!again.hub_kubeconfig().exists());
        assert!(!again.cluster_dir("member-r1").exists());
        assert!(dir.join(MARKER).is_file());

        let foreign = tmp.path().join("foreign");
        std::fs::create_dir_all(&foreign).expect("mkdir");
        std::fs::write(foreign.join("notes.txt"), "keep me").expect("write");
        let err = Layout::prepare(&foreign).expect_err("not the demo's");
        assert!(matches!(err, DemoError::ForeignStateDir { .. }), "{err}");
        assert!(foreign.join("notes.txt").is_file());
    }

    #[test]
    fn shows_paths_as_the_user_named_the_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("d");
        let layout = Layout::prepare(&dir).expect("prepare");
        assert_eq!(
            layout.show(&layout.cluster_kubeconfig("member-r2")),
            dir.join("member-r2.kubeconfig").display().to_string()
        );
        assert_eq!(layout.show(layout.root()), dir.display().to_string());
        assert_eq!(layout.show(Path::new("/elsewhere/x")), "/elsewhere/x");
    }
}
