//! A real S3-compatible server for tests: moto's server on a free loopback port, with one
//! bucket made, killed with its handle. `scripts/test` installs moto when it is missing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::{free_port, wait_until, Daemon, Error};

/// The access key moto is given; it accepts any.
pub const ACCESS_KEY: &str = "test";

/// A running moto S3 server.
pub struct S3Server {
    _daemon: Daemon,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its port.
    pub port: u16,
}

impl S3Server {
    /// Starts moto and creates `bucket` in it.
    pub fn start(bucket: &str) -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating a tempdir", e))?;
        let port = free_port(Ipv4Addr::LOCALHOST)?;
        let mut cmd = std::process::Command::new(moto_program()?);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let daemon = Daemon::spawn(cmd, &dir.path().join("moto.log"))?;
        wait_until("moto to listen", Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })?;
        let server = Self {
            _daemon: daemon,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        server.create_bucket(bucket)?;
        Ok(server)
    }

    /// The `AWS_*` variables a client of this server needs.
    pub fn env(&self) -> [(&'static str, &'static str); 4] {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", ACCESS_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
    }

    /// `PUT /bucket` (moto does not check signatures).
    fn create_bucket(&self, bucket: &str) -> Result<(), Error> {
        let io = |e| Error::io(format!("creating bucket {bucket} on {}", self.endpoint), e);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(io)?;
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(io)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).map_err(io)?;
        match reply.split_whitespace().nth(1) {
            Some("200") => Ok(()),
            _ => Err(io(std::io::Error::other(format!(
                "moto answered {}",
                reply.lines().next().unwrap_or("nothing")
            )))),
        }
    }
}

/// `moto_server` from PATH (scripts/test installs it) or pyenv's shims.
fn moto_program() -> Result<PathBuf, Error> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/root/.pyenv/shims")]);
    for dir in candidates {
        let p = dir.join("moto_server");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::io(
        "finding moto_server",
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not on PATH: install it with pip install 'moto[server]' (scripts/test does)",
        ),
    ))
}
