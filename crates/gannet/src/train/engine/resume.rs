//! What a resume may and may not change, and the identity that tells one run from another.

use serde::Serialize;

/// A new run id: the time and the process, so two runs started anywhere never share one.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// Refuses a resumed config that changes a setting under one of `fixed` (dotted paths), naming
/// the setting and both values.
pub fn check_fixed<C: Serialize>(saved: &C, asked: &C, fixed: &[&str]) -> crate::Result<()> {
    let (a, b) = (serde_json::to_value(saved).expect("configs serialise"), serde_json::to_value(asked).expect("configs serialise"));
    for path in fixed {
        let (mut x, mut y) = (&a, &b);
        for key in path.split('.') {
            x = x.get(key).unwrap_or(&serde_json::Value::Null);
            y = y.get(key).unwrap_or(&serde_json::Value::Null);
        }
        let mut diffs = Vec::new();
        differences(path, x, y, &mut diffs);
        if let Some((name, was, now)) = diffs.into_iter().next() {
            return Err(crate::Error::Config(format!(
                "a resumed run cannot change {name}: the checkpoint has {was}, this command asks for {now}. \
                 A resumed run keeps its data, model and seed; to change them start a new run (another --out)"
            )));
        }
    }
    Ok(())
}

/// The leaves where `x` and `y` differ: (dotted name, value in x, value in y).
fn differences(name: &str, x: &serde_json::Value, y: &serde_json::Value, out: &mut Vec<(String, String, String)>) {
    use serde_json::Value;
    match (x, y) {
        (Value::Object(a), Value::Object(b)) if a.get("arch") == b.get("arch") => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                differences(&format!("{name}.{k}"), a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ if x != y => {
            let show = |v: &Value| match v {
                Value::Null => "none".to_string(),
                Value::Object(o) if o.contains_key("arch") => format!("{} (with its settings)", o["arch"]),
                v => v.to_string(),
            };
            out.push((name.to_string(), show(x), show(y)));
        }
        _ => {}
    }
}
