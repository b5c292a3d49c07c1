//! The HTTP error shape and the strict JSON extractor. Every 4xx answers a JSON body naming the field
//! and the problem: `{"error": "invalid_field", "field": "lines[0].quantity", "message": "..."}`.
//! Request bodies are parsed with `serde_path_to_error`, so a bad value or an unknown field is reported
//! with its path, and a body that is not a JSON object is refused (`not_an_object`); the body size is
//! capped by the kit's hardening (`ORDERFLOW_HTTP_MAX_BODY_BYTES`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error answered to an HTTP client. Build one with the constructors; 5xx details are logged, not sent.
/// It is also the OpenAPI schema of every error answer (`body = ApiError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
    pub status: StatusCode,
    /// A stable, machine-readable code.
    pub error: &'static str,
    /// The request field at fault, as a path (`lines[0].quantity`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            field,
            message: message.into(),
        }
    }

    /// 400: a field of the request is malformed or out of range.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some(field.into()),
            message,
        )
    }

    /// 404: the thing named in the path does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        let what = what.into();
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            None,
            format!("{what} not found"),
        )
    }

    /// 409: the request is well-formed but the current state refuses it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", None, message)
    }

    /// 422: a field names something that does not exist or may not be used (an unknown sku, a
    /// deactivated customer).
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            Some(field.into()),
            message,
        )
    }

    /// 500: logged with its cause; the client only learns that something failed.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            None,
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(&self)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::internal(format!("{error:#}"))
    }
}

/// A JSON request body, parsed strictly: content type `application/json`, within the body limit, and
/// every error reported with the path of the field at fault. Request types should use
/// `#[serde(deny_unknown_fields)]` and domain types that refuse bad values while deserializing.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                Some("content-type".into()),
                "expected content-type: application/json",
            ));
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: no body at all (no content type and no content, or an empty
/// one) reads as `None`; anything else is parsed strictly, like [`ApiJson`] (so `null` or `[]` is a
/// 400, not an absent body).
pub struct OptionalApiJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        let declared_empty = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        let no_body_announced = !headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING);
        let no_type = !headers.contains_key(header::CONTENT_TYPE);
        if declared_empty || (no_type && no_body_announced) {
            return Ok(Self(None));
        }
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(Self(Some(value)))
    }
}

/// The whole request body, within the body limit; a body too large or unreadable answers a 4xx
/// naming `body`.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body_too_large",
                Some("body".into()),
                rejection.body_text(),
            )
        } else {
            ApiError::new(
                status,
                "unreadable_body",
                Some("body".into()),
                rejection.body_text(),
            )
        }
    })
}

/// A path parameter parsed into its domain type; a bad one answers 400 naming `field`.
pub fn path_param<T>(field: &str, raw: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e: T::Err| ApiError::invalid_field(field, e.to_string()))
}

/// The page size of every list endpoint: `limit`, 1 to `MAX_PAGE_LIMIT`, `DEFAULT_PAGE_LIMIT` when absent.
pub const DEFAULT_PAGE_LIMIT: u32 = 20;
pub const MAX_PAGE_LIMIT: u32 = 100;
/// The longest free-text filter (`q`) a list endpoint accepts, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// A list endpoint's `limit`, or a 400 naming it.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"),
        ))
    }
}

/// A list endpoint's free-text filter `q`: trimmed, blank means none, too long is a 400 naming it.
pub fn search_text(q: Option<String>) -> Result<Option<String>, ApiError> {
    let text = q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if text
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    {
        return Err(ApiError::invalid_field(
            "q",
            format!("the search text is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// Query parameters, parsed strictly: a bad or unknown parameter answers 400 naming it.
/// Query types should use `#[serde(deny_unknown_fields)]` and `Option` for optional parameters.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parse a query string, naming the parameter at fault on error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::invalid_field(field_at(&path, &message, "query"), message)
    })
}

/// Parse a JSON object, naming the path of the field at fault on error. Every request body of the
/// API is documented as an object, so anything else (an array, which serde would otherwise read as
/// the struct's fields by position, a string, a number, `null`) is refused with 400 naming `body`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_non_object(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = strip_position(&inner.to_string());
        let field = field_at(&path, &message, "body");
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    Some("body".into()),
                    message,
                )
            }
            _ => ApiError::invalid_field(field, message),
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            Some("body".into()),
            e.to_string(),
        )
    })?;
    Ok(value)
}

/// A 400 unless `bytes` starts (after white space) with `{`. The kind of value is named when the body
/// is valid JSON; a body that is not JSON at all is `malformed_json`.
fn refuse_non_object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Ok(());
    }
    let kind = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Array(_)) => "an array",
        Ok(serde_json::Value::String(_)) => "a string",
        Ok(serde_json::Value::Number(_)) => "a number",
        Ok(serde_json::Value::Bool(_)) => "a boolean",
        Ok(serde_json::Value::Null) => "null",
        Ok(serde_json::Value::Object(_)) => unreachable!("an object starts with {{"),
        Err(error) => {
            let message = if first.is_none() {
                "the body is empty; expected a JSON object".to_string()
            } else {
                strip_position(&error.to_string())
            };
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                Some("body".into()),
                message,
            ));
        }
    };
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "not_an_object",
        Some("body".into()),
        format!("the body must be a JSON object, not {kind}"),
    ))
}

/// The path of the field at fault. serde reports a missing field at its parent's path and names it
/// only in its message, so the name is appended from there; `whole` names the request part when no
/// field is at fault.
fn field_at(path: &str, message: &str, whole: &str) -> String {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_string(),
        (".", None) => whole.to_string(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (parent, None) => parent.to_string(),
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more than that.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        #[allow(dead_code)]
        quantity: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        lines: Vec<Line>,
    }

    #[test]
    fn a_bad_nested_value_names_its_path() {
        let err = parse_json::<Body>(br#"{"lines":[{"quantity":1},{"quantity":-2}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.field.as_deref(), Some("lines[1].quantity"));
        assert!(err.message.contains("-2"), "{}", err.message);
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = parse_json::<Body>(br#"{"lines":[],"discount":5}"#).unwrap_err();
        assert_eq!(err.error, "invalid_field");
        assert!(
            err.message.contains("unknown field `discount`"),
            "{}",
            err.message
        );
        assert_eq!(err.field.as_deref(), Some("discount"));
        let err = parse_json::<Body>(br#"{"lines":[{"quantity":1,"colour":"red"}]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("lines[0].colour"));
    }

    #[test]
    fn malformed_json_is_its_own_error() {
        let err = parse_json::<Body>(br#"{"lines":["#).unwrap_err();
        assert_eq!(
            (err.status, err.error),
            (StatusCode::BAD_REQUEST, "malformed_json")
        );
        let err = parse_json::<Body>(br#"{"lines":[]} trailing"#).unwrap_err();
        assert_eq!(err.error, "malformed_json");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        #[allow(dead_code)]
        limit: Option<u32>,
    }

    #[test]
    fn a_bad_query_parameter_is_named() {
        let err = parse_query::<Page>("limit=ten").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("limit"));
        let err = parse_query::<Page>("limt=10").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("limt"), "{}", err.message);
        let page = parse_query::<Page>("limit=10").unwrap();
        assert_eq!(page.limit, Some(10));
    }

    #[test]
    fn only_an_object_is_a_body() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Positional {
            #[allow(dead_code)]
            a: Option<String>,
            #[allow(dead_code)]
            b: Option<String>,
        }
        for (body, kind) in [
            (&br#"[]"#[..], "an array"),
            (br#" ["x","EUR"]"#, "an array"),
            (br#"null"#, "null"),
            (br#""x""#, "a string"),
            (br#"7"#, "a number"),
            (br#"true"#, "a boolean"),
        ] {
            let err = parse_json::<Positional>(body).unwrap_err();
            assert_eq!(
                (err.status, err.error, err.field.as_deref()),
                (StatusCode::BAD_REQUEST, "not_an_object", Some("body")),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(err.message.contains(kind), "{}", err.message);
        }
        for body in [&b""[..], b"  ", b"[1,", b"nul"] {
            let err = parse_json::<Positional>(body).unwrap_err();
            assert_eq!(err.error, "malformed_json", "{:?}", body);
        }
        assert!(parse_json::<Positional>(br#" {"a":"x"}"#).is_ok());
    }

    #[test]
    fn a_missing_field_is_reported() {
        let err = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert!(
            err.message.contains("missing field `lines`"),
            "{}",
            err.message
        );
        assert_eq!(err.field.as_deref(), Some("lines"));
        let err = parse_json::<Body>(br#"{"lines":[{}]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("lines[0].quantity"));
    }
}
