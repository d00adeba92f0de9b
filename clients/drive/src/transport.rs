//! The HTTP clients under the Drive hub and the token fetcher.
//!
//! google-drive3's defaults read TLS roots from the system, which a `FROM scratch` image lacks;
//! here the roots are compiled in (webpki), the crypto provider is the one the whole binary uses
//! (`ring`, see `shared::http::install_crypto_provider`), and plain HTTP is allowed so the
//! emulator (`http://127.0.0.1:PORT`) works. The hub and yup-oauth2 need clients with different
//! body types, so they share the connector, not the client.

use google_drive3::common::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shared::http::HttpSettings;

/// HTTP or HTTPS, with compiled-in roots.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

pub(crate) fn connector(settings: &HttpSettings) -> shared::Result<Connector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| shared::Error::internal(format!("cannot configure TLS for Google: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.connect_timeout));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

pub(crate) fn hub_client(connector: Connector) -> Client<Connector, Body> {
    Client::builder(TokioExecutor::new()).build(connector)
}

pub(crate) fn auth_client(connector: Connector) -> Client<Connector, String> {
    Client::builder(TokioExecutor::new()).build(connector)
}
