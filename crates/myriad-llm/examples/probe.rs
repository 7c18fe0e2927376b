use myriad_llm::local::{Generation, LocalModel, LocalSettings};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let n: usize = std::env::args().nth(2).map_or(4, |s| s.parse().unwrap());
    let mut s = LocalSettings::new(&path);
    s.batch = std::env::args().nth(3).map_or(16, |x| x.parse().unwrap());
    let t = std::time::Instant::now();
    let m = LocalModel::load(s).unwrap();
    eprintln!("load {:?}", t.elapsed());
    let base = "You live in Brooklyn, New York City, and are in the age group 40t49. Last week there were 120 new COVID-19 infections in your borough. Will you stay at home this week, avoiding school, work and going out? Answer yes or no.";
    let prompts: Vec<(String, u32)> = (0..n).map(|i| (base.to_string(), i as u32)).collect();
    let refs: Vec<(&str, u32)> = prompts.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    let g = Generation {
        temperature: 0.7,
        max_tokens: 8,
        chat: true,
        system: None,
    };
    let t = std::time::Instant::now();
    let out = m
        .generate::<myriad_llm::local::LocalError>(&refs, &g, |_, _| Ok(()))
        .unwrap();
    let el = t.elapsed();
    let toks: u64 = out.iter().map(|o| o.tokens_in + o.tokens_out).sum();
    for o in out.iter().take(8) {
        println!("{:?} in={} out={}", o.text, o.tokens_in, o.tokens_out);
    }
    eprintln!("generate {n}: {:?} ({:.1} tok/s)", el, toks as f64 / el.as_secs_f64());
    let t = std::time::Instant::now();
    let ps: Vec<&str> = (0..n).map(|_| base).collect();
    let sc = m.score(&ps, &["yes".into(), "no".into()], true, None).unwrap();
    eprintln!("score {n}: {:?} {:?}", t.elapsed(), sc[0]);
    // alone vs batch
    let alone = m
        .generate::<myriad_llm::local::LocalError>(&refs[..1], &g, |_, _| Ok(()))
        .unwrap();
    println!("alone {:?} batch {:?}", alone[0].text, out[0].text);
}
