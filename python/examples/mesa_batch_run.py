"""A Mesa user's batch run, on a myriad scenario.

In Mesa one would write::

    results = mesa.batch_run(
        VirusOnNetwork,
        parameters={"virus_spread_chance": [0.02, 0.04, 0.06], "num_nodes": 2000},
        iterations=5, max_steps=100, number_processes=None, data_collection_period=-1,
    )
    df = pd.DataFrame(results)

With myriad the model is a scenario file and parameters are its key paths;
everything else keeps Mesa's names, and the result is a DataFrame:

    python python/examples/mesa_batch_run.py
"""

from pathlib import Path

import myriad

ROOT = Path(__file__).resolve().parents[2]


def main():
    df = myriad.batch_run(
        ROOT / "scenarios" / "sir-erdos-renyi.toml",
        parameters={"params.beta": [0.02, 0.04, 0.06], "population.size": 20_000},
        iterations=5,
        max_steps=100,
        number_processes=None,
        data_collection_period=-1,
    )
    df["attack_rate"] = df["R"] / df["population.size"]
    print(df[["RunId", "iteration", "Step", "params.beta", "R", "attack_rate"]].to_string(index=False))
    summary = df.groupby("params.beta")["attack_rate"].agg(["mean", "min", "max"])
    print("\nshare ever infected by beta:")
    print(summary.to_string())

    # A DataCollector, as in a Mesa model's step(): model and agent reporters.
    sim = myriad.Simulation.from_file(ROOT / "scenarios" / "sir-erdos-renyi.toml",
                                      set={"population.size": 20_000, "params.beta": 0.06})
    dc = myriad.DataCollector(model_reporters={"Infectious": "I"}, agent_reporters={"Stage": "stage"},
                              agent_every=20)
    sim.run(collector=dc)
    agents = dc.get_agent_vars_dataframe()
    print(f"\nagent samples: {len(agents):,} rows (every 20 steps); stage counts at step 40:")
    print(agents.loc[40]["Stage"].value_counts().sort_index().to_string())


if __name__ == "__main__":
    main()
