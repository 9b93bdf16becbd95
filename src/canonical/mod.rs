//! The hub of forgebridge: the canonical operations, entities and errors that every dialect
//! maps onto. Nothing here knows any forge's wire format.

pub mod avatar;
pub mod error;
pub mod object;
pub mod op;
pub mod schema;

pub use error::{CanonicalError, ErrorKind, ValidationCode};
pub use object::{Field, FieldSet, Object, Unread, UnreadPage};
pub use op::{CanonicalRequest, Credential, OpKind, Outcome, PageOf, Paging, Params};
pub use schema::{Entity, FieldType};
