//! What every service's OpenAPI document says about the answers the kit gives, so that each
//! `/openapi.json` matches its server without every handler repeating them:
//! `#[openapi(modifiers(&KeyHeaderDoc, &ContractDoc))]`.
//!
//! - An operation with a JSON body documents 400 (malformed JSON, a body that is not an object, or a
//!   bad field), 413 (the body limit) and 415 (not `application/json`), as `parse_json` and the
//!   hardening answer them.
//! - An optional body (`request_body(content = Option<T>)`, which utoipa writes as "`T` or `null`")
//!   is documented as the object alone, not required: `null` is refused like any non-object.
//! - Every operation documents 408 (the request timeout) and 429 (the rate limit, with
//!   `Retry-After`), and every one behind the bearer-token check (all but `/health/...` and
//!   `/openapi.json`) 401 (no or a bad token, with `WWW-Authenticate`) and 403 (a role or a customer
//!   that may not do it), as `auth` answers them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::{Ref, RefOr, Required, ResponseBuilder, content::ContentBuilder};

/// The modifier; see the module documentation.
pub struct ContractDoc;

impl utoipa::Modify for ContractDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = path.starts_with("/health") || path == "/openapi.json";
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                document(operation, !open);
            }
        }
    }
}

/// An answer with the kit's JSON error body.
pub(crate) fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
        .into()
}

fn document(operation: &mut Operation, authenticated: bool) {
    let mut answers = vec![
        (
            "408",
            "The request was not answered within the request timeout (`request_timeout`); it may be retried",
        ),
        (
            "429",
            "Too many requests from this client (`rate_limited`); `Retry-After` says when to retry",
        ),
    ];
    if authenticated {
        answers.extend([
            (
                "401",
                "No bearer token, or one that does not verify (`unauthorized`, `invalid_token`); `WWW-Authenticate` says why",
            ),
            (
                "403",
                "The token's role or customer may not do this (`forbidden`)",
            ),
        ]);
    }
    if let Some(body) = operation.request_body.as_mut() {
        for content in body.content.values_mut() {
            if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
                let not_null: Vec<_> = one_of
                    .items
                    .iter()
                    .filter(|item| !is_null(item))
                    .cloned()
                    .collect();
                if not_null.len() == 1 && not_null.len() < one_of.items.len() {
                    content.schema = not_null.into_iter().next();
                    body.required = Some(Required::False);
                }
            }
        }
        answers.extend([
            (
                "400",
                "Malformed JSON (`malformed_json`), a body that is not a JSON object (`not_an_object`), or a bad field (`invalid_field`, named in `field`)",
            ),
            ("413", "The body is larger than the server accepts (`body_too_large`)"),
            ("415", "The body is not `application/json` (`unsupported_media_type`)"),
        ]);
    }
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_answer(description));
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object)) if object.schema_type == Type::Null.into())
}
