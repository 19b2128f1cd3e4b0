//! The module graph of one crate, from its `crate::` paths, and the check that
//! it has no cycle (`actors/` must stay layered: see ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Module → the modules it names through `crate::…` paths (its own name excluded).
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph of the top-level modules in `src` (each `src/NAME.rs` or
/// `src/NAME/mod.rs` with the files under `src/NAME/`); the crate root
/// (`lib.rs`), which only declares and re-exports, is not a node.
pub fn graph_of(src: &Path) -> Result<Graph> {
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        if path.is_dir() {
            for f in walk(&path)? {
                files.push((stem.clone(), std::fs::read_to_string(&f)?));
            }
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            files.push((stem, std::fs::read_to_string(&path)?));
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: Graph = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (module, text) in &files {
        for used in crate_paths(text) {
            if used != *module && modules.contains(&used) {
                graph.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    Ok(graph)
}

fn walk(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    Ok(out)
}

/// The first segment after every `crate::` in `text`, including each item of
/// a `crate::{a, b::c}` group.
pub fn crate_paths(text: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        // `$crate::` in macros counts too; `handoff_crate::` would not match a module anyway.
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1usize;
            let mut at_item_start = true;
            let mut chars = group.char_indices();
            while let Some((j, c)) = chars.next() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => at_item_start = true,
                    c if c.is_whitespace() => {}
                    _ if depth == 1 && at_item_start => {
                        let name = ident(&group[j..]);
                        if !name.is_empty() {
                            out.push(name.clone());
                            for _ in 1..name.chars().count() {
                                chars.next();
                            }
                        }
                        at_item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// A cycle in `graph`, as the list of modules around it, if there is one.
pub fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(n: &str, graph: &Graph, marks: &mut BTreeMap<String, Mark>, path: &mut Vec<String>) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path.get(from..).map(<[String]>::to_vec).unwrap_or_default();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n.to_string(), Mark::Open);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Fails if the modules of `src` import each other in a cycle; prints the graph.
pub fn check_acyclic(src: &Path) -> Result<()> {
    eprintln!("\n==> module graph of {} has no cycle", src.display());
    let graph = graph_of(src)?;
    if let Some(cycle) = find_cycle(&graph) {
        bail!("{}: modules import each other in a cycle: {}", src.display(), cycle.join(" -> "));
    }
    for (m, uses) in &graph {
        eprintln!("{m} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Graph {
        edges.iter().map(|(a, bs)| (a.to_string(), bs.iter().map(|b| b.to_string()).collect())).collect()
    }

    #[test]
    fn paths_include_every_item_of_a_group() {
        let text = "use crate::{CmdError, hub::Hub, messages::{A, B}};\nuse crate::stream::x;\nlet y = crate::env::Env;";
        assert_eq!(crate_paths(text), vec!["CmdError", "hub", "messages", "stream", "env"]);
    }

    #[test]
    fn a_cycle_is_found_and_a_layered_graph_passes() {
        let layered = g(&[("hub", &["stream", "practice"]), ("practice", &["stream"]), ("stream", &["env"]), ("env", &[])]);
        assert_eq!(find_cycle(&layered), None);
        let cyclic = g(&[("hub", &["practice"]), ("practice", &["stream"]), ("stream", &["hub"])]);
        let c = find_cycle(&cyclic).expect("a cycle");
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 4, "{c:?}");
    }

    #[test]
    fn the_real_actors_crate_is_acyclic() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../actors/src");
        let graph = graph_of(&src).unwrap();
        assert!(graph.contains_key("hub") && graph.contains_key("stream"), "{graph:?}");
        assert_eq!(find_cycle(&graph), None, "{graph:#?}");
    }
}
