//! Identities and configuration of a TLS mesh: certificates and keys, the cluster's
//! addresses, and the verifiers that pin each party's certificate.

use crate::{NetError, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_FRAME, DEFAULT_TIMEOUT};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;
use std::time::Duration;

/// A party's certificate and private key, PEM-encoded.
#[derive(Clone)]
pub struct PartyIdentity {
    /// Self-signed certificate for `party-K`.
    pub cert_pem: String,
    /// PKCS#8 private key. Never logged.
    pub key_pem: String,
}

impl std::fmt::Debug for PartyIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartyIdentity { .. }")
    }
}

/// Generates a fresh ECDSA P-256 key and a self-signed certificate naming `party-<id>`.
pub fn generate_identity(party: usize) -> Result<PartyIdentity, NetError> {
    let ck = rcgen::generate_simple_self_signed(vec![format!("party-{party}")])
        .map_err(|e| NetError::Setup(format!("certificate generation failed: {e}")))?;
    Ok(PartyIdentity { cert_pem: ck.cert.pem(), key_pem: ck.key_pair.serialize_pem() })
}

/// Where a party listens and which certificate it must present.
#[derive(Clone, Debug)]
pub struct PeerAddress {
    /// Party id.
    pub id: usize,
    /// `host:port` the party listens on.
    pub address: String,
    /// The party's pinned certificate (DER).
    pub cert: CertificateDer<'static>,
}

/// Everything one party needs to join a TLS mesh.
pub struct TlsConfig {
    /// This party's id.
    pub party_id: usize,
    /// Every party of the cluster, this one included, ordered by id.
    pub parties: Vec<PeerAddress>,
    /// This party's private key.
    pub key: PrivateKeyDer<'static>,
    /// How long a receive waits before failing.
    pub timeout: Duration,
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// Largest frame accepted.
    pub max_frame: u64,
    /// Address to listen on when it differs from the one peers dial (`parties[party_id]`):
    /// behind NAT, a relay or a load balancer, or to bind 0.0.0.0.
    pub listen: Option<String>,
    /// Most bytes received from one peer and not yet consumed; beyond it the link fails.
    pub max_buffered: u64,
}

impl TlsConfig {
    /// A configuration with default timeouts, from PEM text.
    pub fn from_pem(
        party_id: usize,
        parties: Vec<(String, String)>,
        key_pem: &str,
    ) -> Result<Self, NetError> {
        let parties = parties
            .into_iter()
            .enumerate()
            .map(|(id, (address, cert_pem))| {
                let cert = certificate_from_pem(&cert_pem)
                    .map_err(|e| NetError::Setup(format!("the certificate of party {id}: {e}")))?;
                Ok(PeerAddress { id, address, cert })
            })
            .collect::<Result<Vec<_>, NetError>>()?;
        Ok(Self {
            party_id,
            parties,
            key: parse_key_pem(key_pem)?,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(30),
            max_frame: DEFAULT_MAX_FRAME,
            listen: None,
            max_buffered: DEFAULT_MAX_BUFFERED,
        })
    }
}

/// Parses one PEM certificate (the first in the text).
pub fn certificate_from_pem(pem: &str) -> Result<CertificateDer<'static>, NetError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| NetError::Setup(format!("bad certificate PEM: {e}")))
}

pub(super) fn parse_key_pem(pem: &str) -> Result<PrivateKeyDer<'static>, NetError> {
    // The error text of a key parse could echo key material: keep it generic.
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| NetError::Setup("private key file is not a PEM private key".into()))
}

#[derive(Debug)]
pub(super) struct PinnedServer {
    pub(super) expected: CertificateDer<'static>,
    pub(super) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("peer certificate is not the pinned one".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[derive(Debug)]
pub(super) struct PinnedClients {
    pub(super) allowed: Vec<CertificateDer<'static>>,
    pub(super) algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.allowed.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General("client certificate is not pinned for any party".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

pub(super) fn server_config(
    provider: &Arc<CryptoProvider>,
    config: &TlsConfig,
    own_cert: CertificateDer<'static>,
) -> Result<Arc<ServerConfig>, NetError> {
    let verifier = PinnedClients {
        allowed: config.parties.iter().filter(|p| p.id != config.party_id).map(|p| p.cert.clone()).collect(),
        algs: provider.signature_verification_algorithms,
    };
    let mut cfg = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![own_cert], config.key.clone_key())
        .map_err(|e| NetError::Setup(format!("own certificate or key rejected: {e}")))?;
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}
