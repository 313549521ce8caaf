//! Merging the Prometheus text of several recorders into one valid exposition.
//!
//! Each pool has its own recorder, so two pools of the same kind both render a
//! `poolside_connpool_open` family. The text format requires one `# HELP` / `# TYPE`
//! header per family with all its samples grouped beneath, so the renders are merged
//! family by family instead of concatenated.

use std::collections::HashMap;

#[derive(Default)]
struct Family {
    help: Option<String>,
    type_line: Option<String>,
    samples: Vec<String>,
}

/// One exposition containing every family of every render, each family once.
pub(crate) fn merge(renders: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: HashMap<String, Family> = HashMap::new();
    for render in renders {
        let mut current: Option<String> = None;
        for line in render.lines().filter(|l| !l.trim().is_empty()) {
            let header = line
                .strip_prefix("# HELP ")
                .map(|rest| (true, rest))
                .or_else(|| line.strip_prefix("# TYPE ").map(|rest| (false, rest)));
            let family_name = match header {
                Some((_, rest)) => rest.split_whitespace().next().unwrap_or_default().to_owned(),
                None if line.starts_with('#') => continue,
                None => match &current {
                    Some(name) => name.clone(),
                    None => sample_name(line).to_owned(),
                },
            };
            let family = families.entry(family_name.clone()).or_insert_with(|| {
                order.push(family_name.clone());
                Family::default()
            });
            match header {
                Some((true, _)) => {
                    family.help.get_or_insert_with(|| line.to_owned());
                }
                Some((false, _)) => {
                    family.type_line.get_or_insert_with(|| line.to_owned());
                }
                None => family.samples.push(line.to_owned()),
            }
            current = Some(family_name);
        }
    }
    let mut out = String::new();
    for name in order {
        let family = &families[&name];
        if family.samples.is_empty() {
            continue;
        }
        for line in family.help.iter().chain(&family.type_line).chain(&family.samples) {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn sample_name(line: &str) -> &str {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_merged_with_one_header_each() {
        let a = "# HELP x_open Open.\n# TYPE x_open gauge\nx_open{pool=\"a\"} 1\n\n# TYPE x_dials counter\nx_dials{pool=\"a\"} 4\n".to_owned();
        let b = "# HELP x_open Open.\n# TYPE x_open gauge\nx_open{pool=\"b\"} 2\n".to_owned();
        let merged = merge(&[a, b]);
        assert_eq!(merged.matches("# HELP x_open").count(), 1);
        assert_eq!(merged.matches("# TYPE x_open").count(), 1);
        let open_block: Vec<&str> = merged.split("\n\n").next().unwrap().lines().collect();
        assert_eq!(
            open_block,
            [
                "# HELP x_open Open.",
                "# TYPE x_open gauge",
                "x_open{pool=\"a\"} 1",
                "x_open{pool=\"b\"} 2"
            ]
        );
        assert!(merged.contains("# TYPE x_dials counter\nx_dials{pool=\"a\"} 4\n"));
    }

    #[test]
    fn empty_families_are_left_out() {
        let a = "# HELP lonely Described but never set.\n# TYPE lonely gauge\n".to_owned();
        assert_eq!(merge(&[a]), "");
        assert_eq!(sample_name("abc{x=\"1\"} 2"), "abc");
        assert_eq!(sample_name("abc 2"), "abc");
    }
}
