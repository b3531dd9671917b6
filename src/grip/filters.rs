//! Subscription filters (spec 5.3): whether a published item reaches one subscription, given the filters the
//! subscription named, the subscription's meta (e.g. `user`) and the item's meta (e.g. `sender`). Shared by
//! HTTP holds and WebSocket subscriptions.

use crate::publish::Item;

/// Filters that change content rather than select it; an item's `content-filters` must name exactly these.
/// Filter names Pushpin does not know are ignored, as Pushpin does.
pub const CONTENT_FILTERS: [&str; 2] = ["build-id", "var-subst"];

/// Whether `item` passes a subscription's `filters`. `subscribed` answers whether the connection listens on
/// a channel (for `require-sub`); `content_filters` is the item's format-level list, if it has one.
pub fn passes_filters(
    filters: &[String],
    sub_meta: &[(String, String)],
    item: &Item,
    content_filters: Option<&Vec<String>>,
    subscribed: &dyn Fn(&str) -> bool,
) -> bool {
    let sub = |k: &str| {
        sub_meta
            .iter()
            .find(|(mk, _)| mk == k)
            .map(|(_, v)| v.as_str())
    };
    let published = |k: &str| {
        item.meta
            .iter()
            .find(|(mk, _)| mk == k)
            .map(|(_, v)| v.as_str())
    };
    for f in filters {
        let keep = match f.as_str() {
            "skip-self" => match (sub("user"), published("sender")) {
                (Some(u), Some(s)) => u != s,
                _ => true,
            },
            "skip-users" => match (sub("user"), published("skip_users")) {
                (Some(u), Some(list)) => !list.split(',').any(|x| x.trim() == u),
                _ => true,
            },
            "require-sub" => match published("require_sub") {
                Some(ch) => subscribed(ch),
                None => true,
            },
            _ => true,
        };
        if !keep {
            return false;
        }
    }
    // content-filters: deliver only to subscriptions whose content-affecting filters match exactly.
    if let Some(wanted) = content_filters {
        let ours: Vec<&String> = filters
            .iter()
            .filter(|f| CONTENT_FILTERS.contains(&f.as_str()))
            .collect();
        if ours.len() != wanted.len() || ours.iter().zip(wanted).any(|(a, b)| *a != b) {
            return false;
        }
    }
    true
}
