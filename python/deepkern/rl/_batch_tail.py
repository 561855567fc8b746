"""The tail of rl.batch_train: once only a few runs are left (a run can get stuck in a long
episode), numpy's fixed per-call cost on tiny arrays exceeds the scalar code's cost per step,
so the remaining runs are finished one after another with the scalar agent, drawing from the
same generators in the same pattern (so results stay exactly those of the sequential rules)."""


class _Outcomes:
    """Per (s, a) the list of (cumulative prob, next state, reward, terminated), as Python scalars."""

    def __init__(self, cum, nxt, rew, term, n_outcomes, SA):
        K = cum.shape[0]
        self.lists = []
        for sa in range(SA):
            n = int(n_outcomes[sa])
            self.lists.append(
                [
                    (float(cum[k, sa]), int(nxt[k * SA + sa]), float(rew[k * SA + sa]), bool(term[k * SA + sa]))
                    for k in range(min(n, K))
                ]
            )

    def sample(self, sa, u):
        outs = self.lists[sa]
        for o in outs:
            if o[0] > u:
                return o
        return outs[-1]


def finish_runs(b, st, model_lists, start_sampler):
    """Finish every run still going in st (rl.batch's _Runs) one by one, on b's tables (its _Batch).
    Every run is mid-episode: s (and for SARSA a) already set, t steps and return G so far."""
    cls, qT, A, S, episodes, limit, hp = b.cls, b.qT, b.A, b.S, b.episodes, b.limit, b.hp
    agent_rng, env_rng, returns, lengths = b.agent_rng, b.env_rng, b.returns, b.lengths
    state = {f: getattr(st, f) for f in ("ids", "base", "s", "a", "eps", "ep", "t", "G")}
    on_policy = cls.needs_next_action
    for j in range(state["ids"].size):
        rid, row0 = int(state["ids"][j]), int(state["base"][j])
        agent = cls(
            S,
            A,
            hp["alpha"],
            hp["gamma"],
            float(state["eps"][j]),
            seed=agent_rng,
            epsilon_decay=hp["epsilon_decay"],
            epsilon_min=hp["epsilon_min"],
        )
        agent.q = qT[:, row0 : row0 + S].T  # a view: updates land in the batch's table
        act, update = agent.act, agent.update
        s, a = int(state["s"][j]), int(state["a"][j])
        t, G, ep = int(state["t"][j]), float(state["G"][j]), int(state["ep"][j])
        while ep < episodes:
            while True:
                if not on_policy:
                    a = act(s)
                _, s2, r, d = model_lists.sample(s * A + a, env_rng.random())
                t += 1
                G += r
                if on_policy:
                    a2 = None if d else act(s2)
                    update(s, a, r, s2, d, a2)
                    a = a2
                else:
                    update(s, a, r, s2, d)
                s = s2
                if d or (limit is not None and t >= limit):
                    break
            returns[rid, ep], lengths[rid, ep] = G, t
            ep += 1
            agent.end_episode()
            if ep < episodes:
                s, t, G = start_sampler(env_rng.random()), 0, 0.0
                if on_policy:
                    a = act(s)
