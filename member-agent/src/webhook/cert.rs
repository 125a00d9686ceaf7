//! A self-signed CA and a serving certificate for the webhook server (rcgen).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// Errors creating certificates or the TLS config.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("generating certificates for {host}: {source}")]
    Generate {
        /// Host the certificate is for.
        host: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls refused the generated material.
    #[error("building the TLS config: {0}")]
    Tls(#[from] rustls::Error),
}

/// PEM material of the webhook server.
#[derive(Debug, Clone)]
pub struct ServingCert {
    /// CA certificate (the `caBundle`).
    pub ca_pem: String,
    /// Server certificate, signed by the CA.
    pub cert_der: Vec<u8>,
    /// Server private key (PKCS#8 DER).
    pub key_der: Vec<u8>,
}

/// Creates a CA and a serving certificate valid for `host` (a DNS name or an IP address).
pub fn generate(host: &str) -> Result<ServingCert, CertError> {
    let err = |source| CertError::Generate {
        host: host.to_string(),
        source,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kruise-agent-webhook-ca");
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let mut params = CertificateParams::new(vec![host.to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kruise-agent-webhook");
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca).map_err(err)?;
    Ok(ServingCert {
        ca_pem: ca.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    })
}

/// A rustls server config serving the certificate.
pub fn server_config(cert: &ServingCert) -> Result<rustls::ServerConfig, CertError> {
    let chain = vec![rustls::pki_types::CertificateDer::from(
        cert.cert_der.clone(),
    )];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into());
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_usable_chain_for_ip_and_dns_hosts() {
        for host in ["127.0.0.1", "kruise-webhook.kruise-system.svc"] {
            let c = generate(host).unwrap();
            assert!(c.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            server_config(&c).unwrap();
        }
    }
}
