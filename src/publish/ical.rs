//! TEMPORARY stub (added by the integrator so the crate compiles while this file is being written):
//! replace with the real renderer, same signature.

pub struct CalendarOptions<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub now: chrono::DateTime<chrono::Utc>,
    pub uid_domain: &'a str,
}

pub fn render(_events: &[crate::model::CanonicalEvent], _opts: &CalendarOptions) -> String {
    String::new()
}
