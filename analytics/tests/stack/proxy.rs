//! A TCP proxy in front of a real server, to take that server "down" for one sink only, without
//! disturbing anything else using the stack: in `Pass` mode bytes flow both ways; in `Refuse` mode
//! every connection is dropped on arrival (and the ones open are cut); `Status(code)` answers every
//! HTTP request with that status (429, 503) and closes the connection.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Status(u16),
}

pub struct Proxy {
    pub address: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Pass);
        let upstream = upstream.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut watcher = watcher.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let mode = *watcher.borrow_and_update();
                    match mode {
                        Mode::Refuse => drop(client),
                        Mode::Status(code) => answer(client, code).await,
                        Mode::Pass => {
                            let Ok(server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                // Any change of mode cuts the connections that are open.
                                _ = watcher.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        Proxy {
            address,
            mode,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read one HTTP request (head and `content-length` body), answer `code`, close.
async fn answer(mut client: TcpStream, code: u16) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let body_start = loop {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < body_start + length {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = format!(
        r#"{{"error":{{"type":"test_proxy","reason":"the test proxy answers {code}"}},"status":{code}}}"#
    );
    let response = format!(
        "HTTP/1.1 {code} Test Proxy\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}
