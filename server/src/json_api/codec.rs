//! The JSON gateway's codec: protobuf JSON bodies in and out of the gRPC services, etcd's
//! error body and its HTTP status, and the requests and `{"result": ...}` lines of streams.

use std::future::Future;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::Code;

/// JSON values of one type from a request body's chunks, as they complete: the requests of
/// a streaming call.
pub struct Values<T> {
    chunks: axum::body::BodyDataStream,
    buf: Vec<u8>,
    done: bool,
    _of: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> Values<T> {
    pub fn new(body: axum::body::Body) -> Self {
        Self {
            chunks: body.into_data_stream(),
            buf: Vec::new(),
            done: false,
            _of: std::marker::PhantomData,
        }
    }

    /// The next value; `None` at the body's end, `Err` for one that does not parse.
    pub async fn next(&mut self) -> Option<Result<T, serde_json::Error>> {
        use futures::StreamExt;
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
            match values.next() {
                Some(Ok(v)) => {
                    let used = values.byte_offset();
                    self.buf.drain(..used);
                    return Some(Ok(v));
                }
                // An unfinished value waits for more of the body, unless there is no more.
                Some(Err(e)) if !e.is_eof() || self.done => return Some(Err(e)),
                None if self.done => return None,
                _ => {}
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                // A body cut off is the end of the requests.
                Some(Err(_)) | None => self.done = true,
            }
        }
    }
}

/// One response of a stream: `{"result": ...}` and a newline, as grpc-gateway writes them.
pub fn result_line(value: &impl Serialize) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'a, T> {
        result: &'a T,
    }
    let mut out = serde_json::to_vec(&Line { result: value }).unwrap_or_default();
    out.push(b'\n');
    out
}

/// A stream's error line, as grpc-gateway writes it (its fields in its order).
pub fn error_line(code: Code, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Detail<'a> {
        grpc_code: i32,
        http_code: u16,
        message: &'a str,
        http_status: &'a str,
    }
    #[derive(Serialize)]
    struct Line<'a> {
        error: Detail<'a>,
    }
    let status = http_status(code);
    let line = Line {
        error: Detail {
            grpc_code: code as i32,
            http_code: status.as_u16(),
            message,
            http_status: status.canonical_reason().unwrap_or_default(),
        },
    };
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The largest JSON body the gateway reads: etcd's largest request, base64-inflated, with room.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// `message` as a gRPC request carrying what the HTTP request did: its headers as metadata
/// (grpc-gateway hands `Authorization` on as `authorization`, etcd's token) and its
/// connection's extensions (the client certificate, for `--client-cert-auth`).
pub fn grpc_request<T>(parts: &axum::http::request::Parts, message: T) -> tonic::Request<T> {
    tonic::Request::from_parts(
        tonic::metadata::MetadataMap::from_headers(parts.headers.clone()),
        parts.extensions.clone(),
        message,
    )
}

/// Handles one unary POST: reads the body, then as [`unary`].
pub async fn handle<Req, Resp, F, Fut>(req: axum::extract::Request, call: F) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => unary(&parts, body, call).await,
        Err(e) => error(Code::InvalidArgument, &e.to_string()),
    }
}

/// Decodes `body` (empty: the default request, as grpc-gateway treats an empty body), calls
/// `call` with it as a request of `parts`, and encodes its answer or its error.
pub async fn unary<Req, Resp, F, Fut>(
    parts: &axum::http::request::Parts,
    body: Bytes,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        Req::default()
    } else {
        match serde_json::from_slice::<Req>(&body) {
            Ok(r) => r,
            Err(e) => return error(Code::InvalidArgument, &e.to_string()),
        }
    };
    match call(grpc_request(parts, request)).await {
        Ok(answer) => json(StatusCode::OK, &answer.into_inner()),
        Err(status) => error(status.code(), status.message()),
    }
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => error(Code::Internal, &e.to_string()),
    }
}

/// grpc-gateway's error body and its HTTP status for a gRPC code.
pub fn error(code: Code, message: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
        code: i32,
    }
    let body = Body {
        error: message,
        message,
        code: code as i32,
    };
    json(http_status(code), &body)
}

/// grpc-gateway v1's `HTTPStatusFromCode`, which etcd 3.4 answers with.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A route per `(path, handler)` under `prefix`, each answering POST.
macro_rules! posts {
    ($prefix:expr, $service:expr, $( $path:literal => $method:ident ),+ $(,)?) => {{
        let mut router = axum::Router::new();
        $(
            let service = $service.clone();
            router = router.route(
                &format!("{}{}", $prefix, $path),
                axum::routing::post(move |req: axum::extract::Request| {
                    let service = service.clone();
                    async move { $crate::json_api::codec::handle(req, |r| async move { service.$method(r).await }).await }
                }),
            );
        )+
        router
    }};
}
pub(crate) use posts;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_grpc_gateways_statuses() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
    }
}
