//! The policy file: safetensors holding the layers (`layer{k}.weight`,
//! `layer{k}.bias`, the last being the action means) and `log_std`, with
//! metadata naming the format, the model, the observation and action
//! components and how it was trained.

use crate::mlp::{forward, Dense};
use myriad_core::rng::CounterRng;
use rayon::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `format` metadata value of a myriad policy file.
pub const FORMAT: &str = "myriad-policy/1";

/// What a policy observes and controls.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySpec {
    /// The model it was trained for.
    pub model: String,
    /// Observation components, in order.
    pub observation: Vec<String>,
    /// Action components, in order.
    pub actions: Vec<String>,
    /// How it was trained (scenario, seed, iterations, ...), as JSON.
    pub training: serde_json::Value,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Reading or writing failed.
    #[error("policy file {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// The file is not a valid policy.
    #[error("policy file {path} is not a valid myriad policy: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The policy was made for another model or observation.
    #[error("policy file {path} does not fit this scenario: {message}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
}

/// A shared policy: MLP layers (tanh between them) giving each action's
/// mean, and a log standard deviation per action component.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// What it observes and controls.
    pub spec: PolicySpec,
    /// The layers, input to output.
    pub layers: Vec<Dense>,
    /// Log standard deviation of each action component.
    pub log_std: Vec<f32>,
}

impl Policy {
    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.layers[0].inputs
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.log_std.len()
    }

    /// Each agent's action: the mean, plus (when `sample`) a normal draw
    /// scaled by the standard deviation keyed by `(step, agent, component)`
    /// in `rng`, clipped to `bounds`. `obs` is `agents x obs_dim`.
    pub fn act(&self, obs: &[f32], step: u32, rng: Option<&CounterRng>, bounds: &[(f32, f32)], out: &mut [f32]) {
        forward(&self.layers, obs, out);
        let d = self.act_dim();
        let std: Vec<f32> = self.log_std.iter().map(|l| l.exp()).collect();
        out.par_chunks_mut(d).enumerate().with_min_len(1024).for_each(|(i, a)| {
            for k in 0..d {
                let mut v = a[k];
                if let Some(rng) = rng {
                    v += std[k] * rng.normal(((step as u64) << 32) | i as u64, k as u64) as f32;
                }
                if let Some(&(lo, hi)) = bounds.get(k) {
                    v = v.clamp(lo, hi);
                }
                a[k] = v;
            }
        });
    }

    /// Check that the policy fits a model's observation and actions.
    pub fn check_fits(
        &self,
        path: &Path,
        model: &str,
        observation: &[&str],
        actions: &[&str],
    ) -> Result<(), PolicyError> {
        let bad = |message: String| PolicyError::Mismatch {
            path: path.to_path_buf(),
            message,
        };
        if self.spec.model != model {
            return Err(bad(format!(
                "it was trained for model '{}', the scenario runs '{model}'",
                self.spec.model
            )));
        }
        if self.spec.observation != observation {
            return Err(bad(format!(
                "it observes [{}], model '{model}' gives [{}]",
                self.spec.observation.join(", "),
                observation.join(", ")
            )));
        }
        if self.spec.actions != actions {
            return Err(bad(format!(
                "it chooses [{}], model '{model}' takes [{}]",
                self.spec.actions.join(", "),
                actions.join(", ")
            )));
        }
        Ok(())
    }

    /// Read a policy file, checking its structure.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|e| PolicyError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Policy::from_bytes(&bytes).map_err(|message| PolicyError::Corrupt {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parse the bytes of a policy file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Policy, String> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not safetensors ({e})"))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not safetensors ({e})"))?;
        // One metadata entry holding a JSON object: safetensors keeps its
        // metadata in a hash map, whose order would change the file's bytes
        // from run to run; one entry (with sorted keys) keeps them fixed.
        let meta = meta.metadata().clone().unwrap_or_default();
        let meta: serde_json::Value = serde_json::from_str(
            meta.get("myriad")
                .ok_or("metadata has no 'myriad' entry (was it written by myriad train?)")?,
        )
        .map_err(|e| format!("metadata 'myriad' is not JSON: {e}"))?;
        let get = |k: &str| meta.get(k).ok_or_else(|| format!("metadata has no '{k}'"));
        let text = |k: &str| -> Result<String, String> {
            get(k)?
                .as_str()
                .map(|s| s.to_string())
                .ok_or_else(|| format!("metadata '{k}' is not text"))
        };
        if text("format")? != FORMAT {
            return Err(format!("metadata format is '{}', expected '{FORMAT}'", text("format")?));
        }
        let list = |k: &str| -> Result<Vec<String>, String> {
            serde_json::from_value(get(k)?.clone()).map_err(|e| format!("metadata '{k}' is not a list of names: {e}"))
        };
        let spec = PolicySpec {
            model: text("model")?,
            observation: list("observation")?,
            actions: list("actions")?,
            training: meta.get("training").cloned().unwrap_or(serde_json::Value::Null),
        };
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>), String> {
            let t = st.tensor(name).map_err(|_| format!("no tensor '{name}'"))?;
            if t.dtype() != Dtype::F32 {
                return Err(format!("tensor '{name}' is {:?}, expected F32", t.dtype()));
            }
            let v: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(x) = v.iter().find(|x| !x.is_finite()) {
                return Err(format!("tensor '{name}' holds {x}"));
            }
            Ok((t.shape().to_vec(), v))
        };
        let mut layers = Vec::new();
        let mut width = spec.observation.len();
        for k in 0.. {
            let wname = format!("layer{k}.weight");
            if st.tensor(&wname).is_err() {
                break;
            }
            let (shape, weight) = tensor(&wname)?;
            let (bshape, bias) = tensor(&format!("layer{k}.bias"))?;
            if shape.len() != 2 || shape[1] != width || bshape != [shape[0]] {
                return Err(format!(
                    "layer {k}: weight {shape:?} and bias {bshape:?} do not follow a width of {width}"
                ));
            }
            width = shape[0];
            layers.push(Dense {
                weight,
                bias,
                inputs: shape[1],
                outputs: shape[0],
            });
        }
        if layers.is_empty() {
            return Err("no layers (layer0.weight)".into());
        }
        if width != spec.actions.len() {
            return Err(format!(
                "the last layer gives {width} values for {} actions",
                spec.actions.len()
            ));
        }
        let (shape, log_std) = tensor("log_std")?;
        if shape != [spec.actions.len()] {
            return Err(format!(
                "log_std has shape {shape:?}, expected [{}]",
                spec.actions.len()
            ));
        }
        Ok(Policy { spec, layers, log_std })
    }

    /// The bytes of the policy file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let as_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            data.push((
                format!("layer{k}.weight"),
                vec![l.outputs, l.inputs],
                as_bytes(&l.weight),
            ));
            data.push((format!("layer{k}.bias"), vec![l.outputs], as_bytes(&l.bias)));
        }
        data.push(("log_std".into(), vec![self.log_std.len()], as_bytes(&self.log_std)));
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, s, b)| {
                Ok((
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| e.to_string())?,
                ))
            })
            .collect::<Result<_, String>>()?;
        let info = serde_json::json!({
            "format": FORMAT,
            "model": self.spec.model,
            "observation": self.spec.observation,
            "actions": self.spec.actions,
            "training": self.spec.training,
        });
        let meta = HashMap::from([("myriad".to_string(), info.to_string())]);
        safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
    }

    /// Write the policy file (through a temporary file, so a failed write
    /// leaves any earlier file whole).
    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        let io = |message: String| PolicyError::Io {
            path: path.to_path_buf(),
            message,
        };
        let bytes = self.to_bytes().map_err(io)?;
        let tmp = path.with_extension("safetensors.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| io(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| io(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            spec: PolicySpec {
                model: "vicsek".into(),
                observation: vec!["a".into(), "b".into()],
                actions: vec!["turn".into()],
                training: serde_json::json!({"seed": 1}),
            },
            layers: vec![
                Dense {
                    weight: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                    bias: vec![0.0, 0.1, 0.2],
                    inputs: 2,
                    outputs: 3,
                },
                Dense {
                    weight: vec![1.0, -1.0, 0.5],
                    bias: vec![0.0],
                    inputs: 3,
                    outputs: 1,
                },
            ],
            log_std: vec![-1.0],
        }
    }

    #[test]
    fn round_trips_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let p = policy();
        p.save(&path).unwrap();
        let q = Policy::load(&path).unwrap();
        assert_eq!(p, q);
        assert!(q.check_fits(&path, "vicsek", &["a", "b"], &["turn"]).is_ok());
        let e = q.check_fits(&path, "kuramoto", &["a", "b"], &["turn"]).unwrap_err();
        assert!(e.to_string().contains("trained for model 'vicsek'"), "{e}");
        let e = q.check_fits(&path, "vicsek", &["a", "c"], &["turn"]).unwrap_err();
        assert!(e.to_string().contains("observes [a, b]"), "{e}");
    }

    #[test]
    fn corrupt_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let bytes = policy().to_bytes().unwrap();
        for (what, b) in [
            ("empty", Vec::new()),
            ("truncated", bytes[..bytes.len() / 2].to_vec()),
            ("junk", b"not a policy at all, just text".to_vec()),
        ] {
            std::fs::write(&path, &b).unwrap();
            let e = Policy::load(&path).unwrap_err().to_string();
            assert!(
                e.contains("p.safetensors") && e.contains("not a valid myriad policy"),
                "{what}: {e}"
            );
        }
        // A NaN weight.
        let mut p = policy();
        p.layers[0].weight[2] = f32::NAN;
        std::fs::write(&path, p.to_bytes().unwrap()).unwrap();
        let e = Policy::load(&path).unwrap_err().to_string();
        assert!(e.contains("layer0.weight") && e.contains("NaN"), "{e}");
        let e = Policy::load(&dir.path().join("missing.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.safetensors"), "{e}");
    }
}
