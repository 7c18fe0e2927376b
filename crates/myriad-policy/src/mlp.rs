//! Batched inference of the policy network: tanh hidden layers and a linear
//! head giving each action's mean. Each agent's output is computed by the
//! same sequence of `f32` operations whatever the thread count, so a run
//! with a policy is bit-identical across threads.

use rayon::prelude::*;

/// A fully connected layer, `out = W in + b`, `W` row-major `[out, in]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Weights, `outputs x inputs`, row-major.
    pub weight: Vec<f32>,
    /// Biases, one per output.
    pub bias: Vec<f32>,
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
}

impl Dense {
    #[inline]
    fn apply(&self, x: &[f32], out: &mut [f32], tanh: bool) {
        for (o, (row, b)) in out
            .iter_mut()
            .zip(self.weight.chunks_exact(self.inputs).zip(&self.bias))
        {
            let mut s = *b;
            for (w, v) in row.iter().zip(x) {
                s += w * v;
            }
            *o = if tanh { s.tanh() } else { s };
        }
    }
}

/// Agents per parallel task: large enough to amortise the scratch buffers.
const CHUNK: usize = 512;

/// The network's output mean for each agent: `obs` is `agents x inputs`,
/// `out` is `agents x actions`. Scratch space is per task, not per agent.
pub fn forward(layers: &[Dense], obs: &[f32], out: &mut [f32]) {
    let inputs = layers[0].inputs;
    let actions = layers.last().expect("a policy has layers").outputs;
    let widest = layers.iter().map(|l| l.outputs).max().unwrap_or(0);
    out.par_chunks_mut(CHUNK * actions)
        .zip(obs.par_chunks(CHUNK * inputs))
        .for_each(|(out, obs)| {
            let (mut a, mut b) = (vec![0.0f32; widest], vec![0.0f32; widest]);
            for (o, x) in out.chunks_exact_mut(actions).zip(obs.chunks_exact(inputs)) {
                let last = layers.len() - 1;
                layers[0].apply(x, &mut a[..layers[0].outputs], last > 0);
                for (k, l) in layers.iter().enumerate().skip(1) {
                    l.apply(&a[..l.inputs], &mut b[..l.outputs], k < last);
                    std::mem::swap(&mut a, &mut b);
                }
                o.copy_from_slice(&a[..actions]);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_a_two_layer_network() {
        let l1 = Dense {
            weight: vec![1.0, 2.0, -1.0, 0.5],
            bias: vec![0.0, 0.1],
            inputs: 2,
            outputs: 2,
        };
        let l2 = Dense {
            weight: vec![1.0, -1.0],
            bias: vec![0.5],
            inputs: 2,
            outputs: 1,
        };
        let obs = [0.3f32, -0.2];
        let mut out = [0.0f32];
        forward(&[l1, l2], &obs, &mut out);
        let h = [(0.3f32 - 0.4).tanh(), (-0.3f32 - 0.1 + 0.1).tanh()];
        assert!((out[0] - (h[0] - h[1] + 0.5)).abs() < 1e-6);
    }
}
