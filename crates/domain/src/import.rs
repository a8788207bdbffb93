//! CSV imports: jobs that write records in chunks, each chunk in one transaction with the
//! job's progress, so that a job resumes after a restart without writing a row twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ObjectType;
use crate::write::IdProperty;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ImportStatus {
    Queued,
    Running,
    Completed,
    /// The job stopped: `error` says why. Rows written before stay written.
    Failed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Queued => "queued",
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ImportStatus> {
        Some(match text {
            "queued" => ImportStatus::Queued,
            "running" => ImportStatus::Running,
            "completed" => ImportStatus::Completed,
            "failed" => ImportStatus::Failed,
            _ => return None,
        })
    }
}

/// Row counts of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub total: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    pub id: Uuid,
    pub org_id: Uuid,
    pub object: ObjectType,
    /// How rows find their records; None: every row creates one.
    pub id_property: Option<IdProperty>,
    /// CSV header → field path, in the file's column order.
    pub mapping: Vec<(String, String)>,
    pub file_name: Option<String>,
    pub status: ImportStatus,
    pub counts: ImportCounts,
    pub error: Option<String>,
    pub user_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImport {
    pub object: ObjectType,
    pub id_property: Option<IdProperty>,
    pub mapping: Vec<(String, String)>,
    pub file_name: Option<String>,
    /// The CSV as uploaded (UTF-8, BOM removed).
    pub content: Vec<u8>,
    pub total: i64,
}

/// A row that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRowError {
    /// The record's number in the file, from 1 (the header is not counted).
    pub row: i64,
    /// The line the record starts on (the header is line 1).
    pub line: i64,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

/// One chunk of a job, carried by the write that stores its rows, so that the job's progress
/// is recorded in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportChunk {
    pub import_id: Uuid,
    /// `processed` after this chunk.
    pub processed_to: i64,
    /// `(row, line)` of each row handed to the store, in order.
    pub rows: Vec<(i64, i64)>,
    /// Rows that failed before reaching the store.
    pub errors: Vec<ImportRowError>,
}

/// A job claimed by a worker, with its file and the context it runs in (its creator's).
#[derive(Debug, Clone)]
pub struct ClaimedImport {
    pub job: ImportJob,
    pub content: Vec<u8>,
    pub ctx: crate::AuthContext,
}
