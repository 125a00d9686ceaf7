//! A small PKI: a cluster CA and a CA-issued serving certificate, persisted in a directory so
//! a restarted server keeps the identity its kubeconfigs trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Errors creating, loading or saving the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("reading or writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The CA and serving certificate in PEM form.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVING_CERT: &str = "apiserver.crt";
const SERVING_KEY: &str = "apiserver.key";
const SERVING_SANS: &str = "apiserver.sans";

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, contents: &str) -> Result<(), PkiError> {
    std::fs::write(path, contents).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn ca_params(name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{name}-ca"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// The SANs a serving certificate carries: loopback, in-cluster names and `extra_hosts`.
pub fn serving_sans(extra_hosts: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = [
        "127.0.0.1",
        "::1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for host in extra_hosts {
        if !sans.contains(host) {
            sans.push(host.clone());
        }
    }
    sans
}

fn issue_serving(
    ca_name: &str,
    ca_key: &KeyPair,
    sans: &[String],
) -> Result<(String, String), PkiError> {
    let ca_key_copy = KeyPair::from_pem(&ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca_params(ca_name)?, ca_key_copy);
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Pki {
    /// Loads the PKI from `dir`, creating what is missing. The serving certificate is
    /// re-issued (by the same CA) when the wanted SANs changed.
    pub fn load_or_create(
        dir: &Path,
        ca_name: &str,
        extra_hosts: &[String],
    ) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (ca_cert_pem, ca_key) = match (read(&dir.join(CA_CERT))?, read(&dir.join(CA_KEY))?) {
            (Some(cert), Some(key)) => (cert, KeyPair::from_pem(&key)?),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params(ca_name)?.self_signed(&key)?;
                write(&dir.join(CA_CERT), &cert.pem())?;
                write(&dir.join(CA_KEY), &key.serialize_pem())?;
                // A new CA invalidates any old serving certificate.
                let _ = std::fs::remove_file(dir.join(SERVING_SANS));
                (cert.pem(), key)
            }
        };
        let sans = serving_sans(extra_hosts).join("\n");
        let existing = (
            read(&dir.join(SERVING_CERT))?,
            read(&dir.join(SERVING_KEY))?,
            read(&dir.join(SERVING_SANS))?,
        );
        let (serving_cert_pem, serving_key_pem) = match existing {
            (Some(cert), Some(key), Some(saved)) if saved == sans => (cert, key),
            _ => {
                let (cert, key) = issue_serving(ca_name, &ca_key, &serving_sans(extra_hosts))?;
                write(&dir.join(SERVING_CERT), &cert)?;
                write(&dir.join(SERVING_KEY), &key)?;
                write(&dir.join(SERVING_SANS), &sans)?;
                (cert, key)
            }
        };
        Ok(Pki {
            ca_cert_pem,
            ca_key_pem: ca_key.serialize_pem(),
            serving_cert_pem,
            serving_key_pem,
        })
    }

    /// A rustls server configuration serving the leaf certificate (HTTP/1.1 and h2 via ALPN).
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let certs = rustls_pemfile::certs(&mut self.serving_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut self.serving_key_pem.as_bytes())?
            .ok_or_else(|| anyhow::anyhow!("no private key in the serving key PEM"))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_ca_and_reissues_leaf_on_new_hosts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(dir.path(), "c1", &[]).expect("create");
        let second = Pki::load_or_create(dir.path(), "c1", &[]).expect("load");
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        let third = Pki::load_or_create(dir.path(), "c1", &["hub.example.com".to_string()])
            .expect("reissue");
        assert_eq!(first.ca_cert_pem, third.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, third.serving_cert_pem);
        assert!(third.server_config().is_ok());
    }
}
