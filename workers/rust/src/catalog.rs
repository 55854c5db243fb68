//! Which code builds a step of a given type: the built-in steps (steps.rs), else Python (python.rs) when the
//! worker hosts it. The one place that chooses, for the session that builds its steps and for the control service
//! that gives a session with Python steps a process of its own.

use crate::cells::BuildContext;
use crate::python;
use crate::step::Step;
use crate::steps::{self, ECHO_TYPE};

/// Whether a step of this type runs in Python: a type is given, and no step of this binary has it.
pub fn is_python(step_type: &str) -> bool {
    !step_type.is_empty() && !steps::is_native(step_type)
}

/// Whether a step runs Python code: a Python step, or a built-in one that hosts Python (a `window` with a user
/// aggregate); a session with one gets a process of its own.
pub fn runs_python(step_type: &str, config_json: &str) -> bool {
    is_python(step_type) || steps::hosts_python(step_type, config_json)
}

/// Builds a step by its type, its cells declared with `context`; an error names the step and what is wrong.
pub fn build(step_name: &str, step_type: &str, config_json: &str, context: &BuildContext) -> Result<Box<dyn Step>, String> {
    // The built-ins are asked first, as they check every step's config (a JSON object), a Python step's too.
    if let Some(built_in) = steps::build(step_name, step_type, config_json, context)? {
        return Ok(built_in);
    }
    if step_type.is_empty() {
        return Err(format!("step '{step_name}' has no type, and this worker has no segments of its own to serve it"));
    }
    python::build(step_name, step_type, config_json, context).unwrap_or_else(|| {
        Err(format!(
            "step '{step_name}': unknown step type '{step_type}' (the Rust worker has the built-in steps append_field, batch, filter, count, running_count and window, and {ECHO_TYPE}; it hosts Python segments, module.Class, when started with --python-runtime DIR)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_config_and_type_are_checked_before_python_is_asked() {
        let context = BuildContext::new(crate::cells::Cells::new(), "s", false);
        let error = |step_type: &str, config: &str| build("s", step_type, config, &context).err().expect("refused");
        assert_eq!(error("module.Class", "[1]"), "step 's': config config must be an object, not [1]");
        assert!(error("module.Class", "{").starts_with("step 's': config is not JSON"));
        assert_eq!(error("", "{}"), "step 's' has no type, and this worker has no segments of its own to serve it");
        assert!(is_python("module.Class") && !is_python("") && !is_python("batch") && !is_python(ECHO_TYPE));
        assert!(runs_python("module.Class", "") && runs_python("window", r#"{"aggregate": "module.Class"}"#));
        assert!(!runs_python("window", r#"{"aggregate": "sum"}"#) && !runs_python("window", "{") && !runs_python("batch", r#"{"aggregate": "a.B"}"#));
    }
}
