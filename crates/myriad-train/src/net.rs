//! The actor and critic networks as candle variables (automatic
//! differentiation and Adam come from candle), initialised from the run's
//! counter-based randomness so that training is reproducible, and
//! converted to and from the inference layers of a policy file.

use candle_core::{DType, Device, Result, Tensor, Var};
use myriad_core::rng::CounterRng;
use myriad_policy::Dense;

/// A multilayer perceptron with tanh between layers.
pub struct Mlp {
    layers: Vec<(Var, Var)>,
}

impl Mlp {
    /// Layers of the given widths (`sizes[0]` inputs), weights uniform in
    /// ±1/sqrt(inputs) (PyTorch's default), the last layer scaled by
    /// `last_scale` (small for the policy's means, so that it starts near
    /// zero actions).
    pub fn new(sizes: &[usize], rng: &CounterRng, tag: u64, last_scale: f64, dev: &Device) -> Result<Mlp> {
        let mut layers = Vec::new();
        for (k, w) in sizes.windows(2).enumerate() {
            let (inputs, outputs) = (w[0], w[1]);
            let bound = 1.0 / (inputs as f64).sqrt();
            let scale = if k + 2 == sizes.len() { last_scale } else { 1.0 };
            let draw = |i: usize| {
                ((rng.uniform((tag << 40) | ((k as u64) << 32), i as u64) * 2.0 - 1.0) * bound * scale) as f32
            };
            let weight: Vec<f32> = (0..inputs * outputs).map(draw).collect();
            let bias = vec![0.0f32; outputs];
            layers.push((
                Var::from_tensor(&Tensor::from_vec(weight, (outputs, inputs), dev)?)?,
                Var::from_tensor(&Tensor::from_vec(bias, outputs, dev)?)?,
            ));
        }
        Ok(Mlp { layers })
    }

    /// From inference layers (resuming from a checkpoint).
    pub fn from_dense(layers: &[Dense], dev: &Device) -> Result<Mlp> {
        let mut out = Vec::new();
        for l in layers {
            out.push((
                Var::from_tensor(&Tensor::from_vec(l.weight.clone(), (l.outputs, l.inputs), dev)?)?,
                Var::from_tensor(&Tensor::from_vec(l.bias.clone(), l.outputs, dev)?)?,
            ));
        }
        Ok(Mlp { layers: out })
    }

    /// Outputs for a batch of rows.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (k, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
            if k < last {
                h = h.tanh()?;
            }
        }
        Ok(h)
    }

    /// The trainable variables.
    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    /// The layers for inference.
    pub fn to_dense(&self) -> Result<Vec<Dense>> {
        self.layers
            .iter()
            .map(|(w, b)| {
                let (outputs, inputs) = w.as_tensor().dims2()?;
                Ok(Dense {
                    weight: w.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
                    bias: b.as_tensor().to_vec1()?,
                    inputs,
                    outputs,
                })
            })
            .collect()
    }
}
