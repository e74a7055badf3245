//! The endpoints: a router over [`Jobs`] that any tokio application can serve.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tracing::info;
use weir_worker::SavepointOptions;

use crate::model::{
    Checkpoints, Exceptions, JobDetails, JobList, JobOverview, SavepointTaken, Workers,
};
use crate::{Error, Jobs, Result, dashboard, metrics};

/// The API's routes over `jobs`.
pub fn router(jobs: Jobs) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{name}", get(job_details))
        .route("/jobs/{name}/checkpoints", get(checkpoints))
        .route("/jobs/{name}/savepoints", post(savepoint))
        .route("/jobs/{name}/cancel", post(cancel))
        .route("/jobs/{name}/exceptions", get(exceptions))
        .route("/workers", get(workers))
        .route("/metrics", get(prometheus))
        .merge(dashboard::routes())
        .with_state(jobs)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn list_jobs(State(jobs): State<Jobs>) -> Json<JobList> {
    let jobs = jobs.all().iter().map(|job| JobOverview::from(&job.status.snapshot())).collect();
    Json(JobList { jobs })
}

async fn job_details(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
) -> Result<Json<JobDetails>> {
    Ok(Json(JobDetails::from(&jobs.get(&name)?.status.snapshot())))
}

async fn checkpoints(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
) -> Result<Json<Checkpoints>> {
    Ok(Json(Checkpoints::from(&jobs.get(&name)?.status.snapshot())))
}

async fn exceptions(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
) -> Result<Json<Exceptions>> {
    Ok(Json(Exceptions::from(&jobs.get(&name)?.status.snapshot())))
}

async fn workers(State(jobs): State<Jobs>) -> Json<Workers> {
    let snapshots: Vec<_> = jobs.all().iter().map(|job| job.status.snapshot()).collect();
    Json(Workers::of(&snapshots))
}

async fn savepoint(
    State(jobs): State<Jobs>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<SavepointTaken>> {
    let job = jobs.get(&name)?;
    // The body is the options as JSON (`dir`, `stop`, `format`); an empty one takes the defaults.
    let options: SavepointOptions = if body.iter().all(u8::is_ascii_whitespace) {
        SavepointOptions::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(e.to_string()))?
    };
    info!(job = %name, stop = options.stop, format = ?options.format, "savepoint requested over the REST API");
    // Taking a savepoint blocks until it is complete: keep it off the async workers.
    let location = tokio::task::spawn_blocking(move || job.control.savepoint(options))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(Error::Savepoint)?;
    Ok(Json(SavepointTaken { location }))
}

async fn cancel(State(jobs): State<Jobs>, Path(name): Path<String>) -> Result<impl IntoResponse> {
    let job = jobs.get(&name)?;
    info!(job = %name, "cancel requested over the REST API");
    job.control.cancel();
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "status": "cancelling" }))))
}

async fn prometheus(State(jobs): State<Jobs>) -> impl IntoResponse {
    let snapshots: Vec<_> = jobs.all().iter().map(|job| job.status.snapshot()).collect();
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&snapshots))
}
