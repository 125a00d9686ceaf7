//! The join file `kruise-hub cluster add` writes and `kruise-agent --hub-join-file` reads: where
//! the hub's gRPC endpoints are, the CA that signs their certificates, and the cluster's token.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Credentials and endpoints an agent needs to join the hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinFile {
    /// Name of the ManagedCluster this agent serves.
    pub cluster: String,
    /// gRPC endpoints of the hub replicas, e.g. `https://127.0.0.1:7443`; any of them serves.
    pub endpoints: Vec<String>,
    /// PEM of the CA that signed the hub's serving certificates.
    pub ca_pem: String,
    /// The cluster's bearer token.
    pub token: String,
    /// TLS server name to verify (default: the endpoint's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// A join file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JoinFileError {
    /// The file could not be read or written.
    #[error("join file {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid join file.
    #[error("join file {path} is invalid: {message}")]
    Invalid {
        /// File path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl JoinFile {
    /// Reads and checks a join file (YAML or JSON).
    pub fn read(path: &Path) -> Result<Self, JoinFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| JoinFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let file: JoinFile = serde_yaml::from_str(&text).map_err(|e| JoinFileError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        file.check().map_err(|message| JoinFileError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(file)
    }

    /// Writes the file (mode 0600, atomically).
    pub fn write(&self, path: &Path) -> Result<(), JoinFileError> {
        let io = |source| JoinFileError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_yaml::to_string(self).map_err(|e| JoinFileError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn check(&self) -> Result<(), String> {
        if self.cluster.is_empty() {
            return Err("cluster is empty".into());
        }
        if self.endpoints.is_empty() {
            return Err("no endpoints".into());
        }
        if self.token.is_empty() {
            return Err("token is empty".into());
        }
        if !self.ca_pem.contains("BEGIN CERTIFICATE") {
            return Err("caPem holds no PEM certificate".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_missing_fields() {
        let dir = std::env::temp_dir().join(format!("join-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c1.yaml");
        let file = JoinFile {
            cluster: "c1".into(),
            endpoints: vec!["https://127.0.0.1:7443".into()],
            ca_pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into(),
            token: "c1:abc".into(),
            server_name: None,
        };
        file.write(&path).expect("write");
        assert_eq!(JoinFile::read(&path).expect("read"), file);
        let broken = JoinFile {
            endpoints: vec![],
            ..file
        };
        broken.write(&path).expect("write");
        let err = JoinFile::read(&path).expect_err("no endpoints");
        assert!(err.to_string().contains("no endpoints"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
