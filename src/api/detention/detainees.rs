//! Each consulate's list of detainees: how long held, when last visited,
//! whether a visit or the first contact is overdue.

use super::*;
use crate::domain::audit::AuditAction;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DetaineeQuery {
    /// Consulate id (national roles; staff see their own).
    pub consulate: Option<uuid::Uuid>,
    /// Include released and deported persons.
    pub include_released: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    pub offset: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetaineeResponse {
    pub detention_id: Id,
    pub case_id: Id,
    pub consulate_id: Id,
    pub person_id: Id,
    /// Masked outside the owning consulate when the case is protected.
    pub name: String,
    pub place: String,
    pub place_city: Option<String>,
    pub legal_situation: LegalSituation,
    pub arrested_on: NaiveDate,
    pub days_detained: i64,
    pub last_visit_at: Option<Ts>,
    /// Days since the last visit; absent when never visited.
    pub days_since_last_visit: Option<i64>,
    pub next_visit_due: Option<NaiveDate>,
    /// The next visit's day has passed.
    pub visit_overdue: bool,
    pub first_contact_breach: bool,
    pub released_on: Option<NaiveDate>,
}

/// The detainees a consulate follows, those visited longest ago (or never)
/// first.
#[utoipa::path(
    tag = "detention",
    operation_id = "list_detainees",
    security(("bearer" = [])),
    params(DetaineeQuery),
    responses(
        (status = 200, body = Page<DetaineeResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/detentions")]
pub async fn list_detainees(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: QueryParams<DetaineeQuery>,
) -> Result<web::Json<Page<DetaineeResponse>>, AppError> {
    user.require(&access::LIST_DETAINEES)?;
    let q = query.into_inner();
    let window = window(q.limit, q.offset)?;
    let consulate = scoped_consulate(&user, q.consulate.map(Id));
    let (meta, viewer) = (RequestMeta::of(&req), user.viewer(false));
    let (items, total) = db::run(&state.pool, move |conn| {
        let (rows, total) =
            model::list_detentions(conn, consulate, q.include_released.unwrap_or(false), window)?;
        let now = Ts::now();
        let today = now.0.date_naive();
        let mut items = Vec::with_capacity(rows.len());
        for d in rows {
            let name = match persons_model::find_person(conn, d.person_id)? {
                Some(p) => p.name_as_seen(access_service::person_access(conn, viewer, &p)?.view),
                None => String::new(),
            };
            items.push(DetaineeResponse {
                name,
                first_contact_breach: first_contact(&d, now).breach,
                days_detained: (d.released_on.unwrap_or(today) - d.arrested_on).num_days(),
                days_since_last_visit: days_since(d.last_visit_at, now),
                visit_overdue: d.next_visit_due.is_some_and(|n| n < today),
                legal_situation: LegalSituation::stored(&d.legal_situation)?,
                detention_id: d.id,
                case_id: d.case_id,
                consulate_id: d.consulate_id,
                person_id: d.person_id,
                place: d.place,
                place_city: d.place_city,
                arrested_on: d.arrested_on,
                last_visit_at: d.last_visit_at,
                next_visit_due: d.next_visit_due,
                released_on: d.released_on,
            });
        }
        crate::api::disclosure::screen(
            conn,
            &user,
            &meta,
            AuditAction::DetentionList,
            &mut items,
            |d| d.case_id,
            |d| {
                d.place = crate::api::disclosure::WITHHELD.into();
                d.place_city = crate::api::disclosure::withheld(&d.place_city);
            },
        )?;
        Ok::<_, AppError>((items, total))
    })
    .await?;
    Ok(web::Json(Page::new(&req, items, total, window)))
}
