//! `ams-import`: a club-management system (AMS) drops a member file; the
//! property's club roster is wiped and replaced, safely.
//!
//! Layout:
//! - [`pipeline`]: one import, whatever the file came from: duplicate and
//!   order checks, streaming parse on a blocking thread, the generation
//!   written in chunks, the apply/hold/reject decision, the pointer flip,
//!   the sweep of retired generations.
//! - [`s3`]: the S3 event handler (Lambda) and object reading.
//! - [`alert`]: held imports published to an SNS topic (AWS).
//!
//! Every delivery comes in through [`ImportRequest::new`] (the key
//! `ams/<property>/<file>` names the property and the kind) and is imported
//! by [`pipeline::import`]: the S3 handler here, the local runner's drop
//! folder and its `guesthub import` command.

pub mod alert;
pub mod pipeline;
pub mod s3;

pub use pipeline::{ImportError, ImportRequest, Input, import};
