//! `cairn up`'s control socket: how the local transport's services are started, stopped and
//! asked about, as `systemctl` does for a provisioned host's unit.
//!
//! The socket is `data_dir/control.sock` of the inventory. One request per connection, a line
//! of JSON each way: the member, the unit and the action (none: the state), answered with the
//! unit's state after the action, or why it could not be done.

use std::path::{Path, PathBuf};

use cairn_inventory::Inventory;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::host::{ServiceState, Systemctl};
use crate::Error;

/// The control socket of a local inventory's `cairn up`.
pub fn socket_path(inventory: &Inventory) -> PathBuf {
    inventory.cluster.data_dir.join("control.sock")
}

/// One request: `action` on `unit` of `member`, or its state when `action` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The member (filled in by [`ask`]).
    #[serde(default)]
    pub member: String,
    /// The unit, e.g. `cairn.service`.
    pub unit: String,
    /// What to do; `None` asks for the state.
    pub action: Option<Systemctl>,
}

impl Request {
    /// `action` on `unit` (state only, with `None`).
    pub fn new(unit: &str, action: Option<Systemctl>) -> Self {
        Self {
            member: String::new(),
            unit: unit.to_string(),
            action,
        }
    }
}

/// The answer: the unit's state after the action, or why it failed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    State(ServiceState),
    Refused(String),
}

/// Sends `request` for `member` to the `cairn up` listening on `socket`. With none listening,
/// a state request is answered "inactive" (nothing runs) and an action is an error.
pub async fn ask(socket: &Path, member: &str, mut request: Request) -> Result<ServiceState, Error> {
    request.member = member.to_string();
    let down = |source| Error::LocalControlDown {
        socket: socket.to_path_buf(),
        source,
    };
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e)
            if request.action.is_none()
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
        {
            return Ok(ServiceState::default());
        }
        Err(e) => return Err(down(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(&request).map_err(|e| down(std::io::Error::other(e)))?;
    line.push('\n');
    write.write_all(line.as_bytes()).await.map_err(down)?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(down)?;
    match serde_json::from_str(&answer).map_err(|e| down(std::io::Error::other(e)))? {
        Reply::State(state) => Ok(state),
        Reply::Refused(reason) => Err(Error::LocalService {
            host: request.member,
            unit: request.unit,
            reason,
        }),
    }
}

/// A request as the supervisor gets it, with where its answer goes.
pub struct Incoming {
    /// What was asked.
    pub request: Request,
    /// The state after it, or why it could not be done.
    pub reply: oneshot::Sender<Result<ServiceState, String>>,
}

/// The listening socket; dropping it removes the socket file.
pub struct Control {
    path: PathBuf,
    requests: mpsc::Receiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

impl Control {
    /// Listens on `path`, replacing a socket left by a `cairn up` that is gone; refused when
    /// another `cairn up` answers there.
    pub async fn bind(path: &Path) -> Result<Self, Error> {
        let err = |source| Error::LocalWrite {
            path: path.to_path_buf(),
            source,
        };
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::AlreadyUp {
                socket: path.to_path_buf(),
            });
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        let (tx, requests) = mpsc::channel(16);
        let task = tokio::spawn(accept(listener, tx));
        Ok(Self {
            path: path.to_path_buf(),
            requests,
            task,
        })
    }

    /// The next request; never ends while the socket is open.
    pub async fn next(&mut self) -> Incoming {
        match self.requests.recv().await {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, tx.clone()));
    }
}

/// One connection: a request line in, an answer line out.
async fn serve(stream: UnixStream, tx: mpsc::Sender<Incoming>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::Refused(format!("not a control request: {e}")),
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            if tx.send(Incoming { request, reply }).await.is_err() {
                Reply::Refused("cairn up is stopping".into())
            } else {
                match answer.await {
                    Ok(Ok(state)) => Reply::State(state),
                    Ok(Err(reason)) => Reply::Refused(reason),
                    Err(_) => Reply::Refused("cairn up is stopping".into()),
                }
            }
        }
    };
    if let Ok(mut text) = serde_json::to_string(&reply) {
        text.push('\n');
        let _ = write.write_all(text.as_bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_reaches_the_supervisor_and_its_answer_comes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control.sock");
        // Nothing listens: inactive, and an action is refused with how to fix it.
        let state = ask(&path, "m1", Request::new("cairn.service", None))
            .await
            .expect("state");
        assert_eq!(state, ServiceState::default());
        let err = ask(
            &path,
            "m1",
            Request::new("cairn.service", Some(Systemctl::Start)),
        )
        .await
        .expect_err("no cairn up");
        assert!(err.to_string().contains("cairn up"), "{err}");

        let mut control = Control::bind(&path).await.expect("bind");
        assert!(matches!(
            Control::bind(&path).await,
            Err(Error::AlreadyUp { .. })
        ));
        let supervisor = tokio::spawn(async move {
            for _ in 0..2 {
                let incoming = control.next().await;
                let answer = match incoming.request.action {
                    Some(Systemctl::Stop) => {
                        Err(format!("{} is not running", incoming.request.member))
                    }
                    _ => Ok(ServiceState {
                        active: true,
                        enabled: true,
                    }),
                };
                let _ = incoming.reply.send(answer);
            }
            control
        });
        let state = ask(
            &path,
            "m2",
            Request::new("cairn.service", Some(Systemctl::Start)),
        )
        .await
        .expect("start");
        assert!(state.active && state.enabled);
        let err = ask(
            &path,
            "m2",
            Request::new("cairn.service", Some(Systemctl::Stop)),
        )
        .await
        .expect_err("refused");
        assert!(err.to_string().ends_with(": m2 is not running"), "{err}");
        drop(supervisor.await.expect("supervisor"));
        assert!(!path.exists(), "the socket file is left behind");
    }
}
