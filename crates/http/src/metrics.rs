//! Request counters and latency histograms by route template and status, rendered in the
//! Prometheus text format with the database pools' gauges.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rapport_domain::PoolStats;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    series: Mutex<HashMap<SeriesKey, Series>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            series: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Counts one answered request. Every label comes from a closed set, so that no client
    /// can make new series: `method` is one of the standard methods or `other`, `route` the
    /// matched template (`/v1/contacts/{id}`, or `unmatched`), never the raw path.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        let key = SeriesKey {
            method: method_label(method),
            route: route.to_owned(),
            status,
        };
        let mut series = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        entry.buckets[slot] += 1;
    }

    pub fn render(&self, pools: &[PoolStats]) -> String {
        let mut out = String::with_capacity(4096);
        let snapshot: Vec<(SeriesKey, u64, f64, [u64; BUCKETS.len() + 1])> = {
            let series = self
                .series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut rows: Vec<_> = series
                .iter()
                .map(|(k, s)| (k.clone(), s.count, s.sum_seconds, s.buckets))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        };

        let _ = writeln!(
            out,
            "# HELP rapport_build_info The running version.\n# TYPE rapport_build_info gauge\n\
             rapport_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP rapport_uptime_seconds Seconds since the server started.\n\
             # TYPE rapport_uptime_seconds gauge\nrapport_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );

        out.push_str(
            "# HELP rapport_http_requests_total Requests answered, by method, route template and status.\n\
             # TYPE rapport_http_requests_total counter\n",
        );
        for (key, count, _, _) in &snapshot {
            let _ = writeln!(
                out,
                "rapport_http_requests_total{{{}}} {count}",
                labels(key)
            );
        }

        out.push_str(
            "# HELP rapport_http_request_duration_seconds Time to answer, by method, route template and status.\n\
             # TYPE rapport_http_request_duration_seconds histogram\n",
        );
        for (key, count, sum, buckets) in &snapshot {
            let labels = labels(key);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "rapport_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "rapport_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
                 rapport_http_request_duration_seconds_sum{{{labels}}} {sum}\n\
                 rapport_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }

        out.push_str(
            "# HELP rapport_db_pool_connections Open database connections, by pool and state.\n\
             # TYPE rapport_db_pool_connections gauge\n",
        );
        for pool in pools {
            let busy = pool.size.saturating_sub(pool.idle);
            let _ = writeln!(
                out,
                "rapport_db_pool_connections{{pool=\"{name}\",state=\"idle\"}} {idle}\n\
                 rapport_db_pool_connections{{pool=\"{name}\",state=\"busy\"}} {busy}",
                name = pool.name,
                idle = pool.idle,
            );
        }
        out.push_str(
            "# HELP rapport_db_pool_size Open connections per pool (idle and busy).\n\
             # TYPE rapport_db_pool_size gauge\n",
        );
        for pool in pools {
            let _ = writeln!(
                out,
                "rapport_db_pool_size{{pool=\"{}\"}} {}",
                pool.name, pool.size
            );
        }
        out.push_str(
            "# HELP rapport_db_pool_max_connections Configured maximum per pool.\n\
             # TYPE rapport_db_pool_max_connections gauge\n",
        );
        for pool in pools {
            let _ = writeln!(
                out,
                "rapport_db_pool_max_connections{{pool=\"{}\"}} {}",
                pool.name, pool.max
            );
        }
        out
    }
}

/// The methods HTTP defines, by name; any other token a client sends counts as `other`.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

fn method_label(method: &str) -> &'static str {
    METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

fn labels(key: &SeriesKey) -> String {
    format!(
        "method=\"{}\",route=\"{}\",status=\"{}\"",
        escape(key.method),
        escape(&key.route),
        key.status
    )
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_bucket_and_the_totals() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/v1/things/{id}", 200, Duration::from_millis(3));
        metrics.observe("GET", "/v1/things/{id}", 200, Duration::from_millis(30));
        let text = metrics.render(&[]);
        let labels = r#"method="GET",route="/v1/things/{id}",status="200""#;
        assert!(text.contains(&format!("rapport_http_requests_total{{{labels}}} 2")));
        assert!(text.contains(&format!(
            "rapport_http_request_duration_seconds_bucket{{{labels},le=\"0.0025\"}} 0"
        )));
        assert!(text.contains(&format!(
            "rapport_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "rapport_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2"
        )));
        assert!(text.contains(&format!(
            "rapport_http_request_duration_seconds_count{{{labels}}} 2"
        )));
    }

    #[test]
    fn unknown_method_tokens_share_one_series() {
        let metrics = Metrics::default();
        for n in 0..1000 {
            metrics.observe(&format!("X{n}"), "unmatched", 405, Duration::from_millis(1));
        }
        metrics.observe("PATCH", "unmatched", 404, Duration::from_millis(1));
        let text = metrics.render(&[]);
        let series = text
            .lines()
            .filter(|l| l.starts_with("rapport_http_requests_total{"))
            .collect::<Vec<_>>();
        assert_eq!(
            series,
            [
                r#"rapport_http_requests_total{method="PATCH",route="unmatched",status="404"} 1"#,
                r#"rapport_http_requests_total{method="other",route="unmatched",status="405"} 1000"#,
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn pools_are_reported_by_state() {
        let text = Metrics::default().render(&[PoolStats {
            name: "primary",
            size: 5,
            idle: 3,
            max: 32,
        }]);
        assert!(text.contains("rapport_db_pool_connections{pool=\"primary\",state=\"idle\"} 3"));
        assert!(text.contains("rapport_db_pool_connections{pool=\"primary\",state=\"busy\"} 2"));
        assert!(text.contains("rapport_db_pool_max_connections{pool=\"primary\"} 32"));
    }
}
