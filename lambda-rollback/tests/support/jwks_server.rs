//! A JWKS endpoint on 127.0.0.1 (a minimal HTTP/1.1 server on tokio) and
//! RS256 signers whose keys it serves: an identity provider for the
//! control API's `jwks_url` tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An RSA key (2048 bits) under a `kid`.
pub struct RsaSigner {
    kid: String,
    enc: jsonwebtoken::EncodingKey,
    /// Its public JWK.
    pub jwk: Value,
}

impl RsaSigner {
    /// A signer with a fresh key.
    pub fn new(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let b64 = |b: Vec<u8>| URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                         "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())});
        let enc = jsonwebtoken::EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
        Self {
            kid: kid.to_owned(),
            enc,
            jwk,
        }
    }

    /// An RS256 token with `claims`, its header naming this key's kid.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.enc).unwrap()
    }
}

/// Serves `{"keys": [...]}` at any path; counts requests.
pub struct JwksServer {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Listens on 127.0.0.1 (a free port) serving `keys`.
    pub async fn start(keys: &[&Value]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            body: Arc::default(),
            hits: Arc::default(),
        };
        server.serve(keys);
        let (body, hits) = (server.body.clone(), server.hits.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (body, hits) = (body.clone(), hits.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = body.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        server
    }

    /// Serves `keys` from now on.
    pub fn serve(&self, keys: &[&Value]) {
        *self.body.lock().unwrap() = json!({ "keys": keys }).to_string();
    }

    /// The JWKS URL.
    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
