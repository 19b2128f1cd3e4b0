//! `handoff-baseline ADDR`: the practical limit the fan-out and idle figures
//! are compared with. A minimal WebSocket broadcast server: tokio (2 worker
//! threads), tokio-tungstenite, and one tokio broadcast channel. Every text
//! frame a client sends goes to every other connected client. A client that
//! falls 1024 frames behind is disconnected, the same bound as our server's
//! `ws_outgoing_buffer`. No authentication, no store, no JSON: the floor.

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    let (tx, _) = broadcast::channel::<(u64, Utf8Bytes)>(1024);
    let mut next = 0u64;
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of file descriptors, say: wait and go on accepting.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        next += 1;
        let id = next;
        let tx = tx.clone();
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else { return };
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    m = stream.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let _ = tx.send((id, t));
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                    r = rx.recv() => match r {
                        Ok((from, t)) => {
                            if from != id && sink.send(Message::Text(t)).await.is_err() {
                                break;
                            }
                        }
                        // Lagged: a slow consumer; closed, as ours does.
                        Err(_) => break,
                    },
                }
            }
        });
    }
}
