use super::*;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/tests/fixtures/health/releases.json"
));

#[test]
fn picks_the_stage_or_says_why_not() {
    let report = parse(FIXTURE).unwrap();
    let shop = pick(&report, "shop", "prod").unwrap();
    assert_eq!(shop.window_s, 60);
    assert_eq!(
        pick(&report, "shop", "beta"),
        Err(EdgeUnavailable::NotMonitored)
    );
    let mut broken = report.clone();
    broken.stages[0].health = None;
    broken.stages[0].error = Some("object reset".into());
    assert_eq!(
        pick(&broken, "shop", "prod"),
        Err(EdgeUnavailable::Monitor("object reset".into()))
    );
    assert!(matches!(
        parse(b"<html>"),
        Err(EdgeUnavailable::Unreadable(_))
    ));
}

#[test]
fn admin_keys_are_header_safe_and_never_printed() {
    let key = EdgeAdminKey::new("k-123").unwrap();
    assert_eq!(format!("{key:?}"), "EdgeAdminKey(..)");
    for bad in ["", "a b", "a\nb", "ключ"] {
        assert_eq!(EdgeAdminKey::new(bad), Err(EdgeAdminKeyError::NotAToken));
    }
}

/// An edge on 127.0.0.1 answering every request with `status` and `body`
/// (or never, when `status` is 0); the requests' heads are sent back.
async fn edge(status: u16, body: &'static [u8]) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/__tidegate/health/releases",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned()).await;
                if status == 0 {
                    // Hold the connection open without answering.
                    let _ = socket.read(&mut buf).await;
                    return;
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.write_all(body).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn fetches_with_the_bearer_key() {
    let (url, mut heads) = edge(200, FIXTURE).await;
    let key = EdgeAdminKey::new("demo-admin-key").unwrap();
    let feed = EdgeFeed::new();
    let health = feed
        .stage(Some(&url), Some(&key), "shop", "prod")
        .await
        .unwrap();
    assert_eq!(health.api, "shop");
    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("get /__tidegate/health/releases "),
        "{head}"
    );
    assert!(
        head.contains("authorization: bearer demo-admin-key"),
        "{head}"
    );
    assert_eq!(
        feed.stage(Some(&url), Some(&key), "nope", "prod").await,
        Err(EdgeUnavailable::NotMonitored)
    );
}

#[tokio::test]
async fn every_failure_is_a_reason() {
    let key = EdgeAdminKey::new("k").unwrap();
    let feed = EdgeFeed::new();
    assert_eq!(
        feed.stage(None, Some(&key), "shop", "prod").await,
        Err(EdgeUnavailable::NotConfigured)
    );
    assert_eq!(
        feed.stage(Some("http://127.0.0.1:1/"), None, "shop", "prod")
            .await,
        Err(EdgeUnavailable::NoKey)
    );
    let (url, _h) = edge(401, b"{}").await;
    let refused = feed.stage(Some(&url), Some(&key), "shop", "prod").await;
    assert_eq!(refused, Err(EdgeUnavailable::Refused(401)));
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains(EDGE_ADMIN_KEY_ENV));
    let (url, _h) = edge(503, b"{}").await;
    assert_eq!(
        feed.stage(Some(&url), Some(&key), "shop", "prod").await,
        Err(EdgeUnavailable::Status(503))
    );
    let (url, _h) = edge(200, b"not json").await;
    assert!(matches!(
        feed.stage(Some(&url), Some(&key), "shop", "prod").await,
        Err(EdgeUnavailable::Unreadable(_))
    ));
    // Nothing listens on a port the OS just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    assert!(matches!(
        feed.stage(Some(&closed), Some(&key), "shop", "prod").await,
        Err(EdgeUnavailable::Unreachable(_))
    ));
    let (url, _h) = edge(0, b"").await;
    assert_eq!(
        feed.stage(Some(&url), Some(&key), "shop", "prod").await,
        Err(EdgeUnavailable::Timeout)
    );
}
