"""Model-based planning on any env with P: policy evaluation, value iteration, policy iteration
(Sutton & Barto, chapter 4). All work on the dense arrays of rl.model.tabular_model.

A transition flagged terminated does not bootstrap (its value is its reward), so the value of a
terminal state itself never matters; absorbing terminal states come out with V = 0.
"""

import numpy as np

from ._checks import check_int, check_real
from .model import expected_q, tabular_model


def _greedy(Q, tol):
    """Greedy policy from Q, ties within tol broken to the lowest action (so that value and
    policy iteration, whose values differ by round-off, pick the same action)."""
    scale = max(1.0, float(np.abs(Q).max())) if Q.size else 1.0
    return np.argmax(Q >= Q.max(axis=1, keepdims=True) - tol * scale, axis=1)


def _policy_matrix(policy, n_states, n_actions, where):
    p = np.asarray(policy)
    if p.ndim == 1:
        if p.shape[0] != n_states:
            raise ValueError(
                f"{where}: argument 'policy' must have one action per state ({n_states}), got shape {p.shape}"
            )
        if p.dtype.kind not in "iu":
            raise TypeError(f"{where}: argument 'policy' must hold integer actions, got dtype {p.dtype}")
        if p.min() < 0 or p.max() >= n_actions:
            raise ValueError(f"{where}: argument 'policy' holds actions outside [0, {n_actions - 1}]")
        m = np.zeros((n_states, n_actions))
        m[np.arange(n_states), p] = 1.0
        return m
    if p.shape != (n_states, n_actions):
        raise ValueError(
            f"{where}: argument 'policy' must be ({n_states},) actions or ({n_states}, {n_actions}) "
            f"probabilities, got shape {p.shape}"
        )
    p = p.astype(np.float64)
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0):
        raise ValueError(f"{where}: argument 'policy' rows must be probabilities summing to 1")
    return p


def _evaluate(model, pi, gamma, where):
    """Exact V^pi by solving (I - gamma P_pi) V = r_pi (P_pi over non-terminating transitions)."""
    S = model.n_states
    w = pi[:, :, None] * model.prob  # (S, A, K) probability of each outcome under pi
    r_pi = (w * model.reward).sum((1, 2))
    cont = np.where(model.terminated, 0.0, w)
    P_pi = np.zeros((S, S))
    np.add.at(P_pi, (np.repeat(np.arange(S), cont.shape[1] * cont.shape[2]), model.next_state.ravel()), cont.ravel())
    try:
        V = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
    except np.linalg.LinAlgError:
        V = None
    if V is None or not np.all(np.isfinite(V)) or not np.allclose((np.eye(S) - gamma * P_pi) @ V, r_pi, atol=1e-6):
        raise ValueError(
            f"{where}: the policy never terminates from some state, so with gamma={gamma} its values "
            "are unbounded; use gamma < 1"
        )
    return V


def policy_evaluation(env, policy, gamma=0.99, theta=None):
    """V^pi for a deterministic policy (int array over states) or a stochastic one ((S, A) matrix),
    exactly (a linear solve); theta is accepted for symmetry with iterative evaluation and unused.

    >>> from deepkern import rl
    >>> env = rl.CliffWalking()
    >>> V, policy = rl.value_iteration(env, gamma=1.0)
    >>> float(rl.policy_evaluation(env, policy, gamma=1.0)[36])
    -13.0
    """
    gamma = check_real("policy_evaluation", "gamma", gamma, 0.0, 1.0)
    if theta is not None:
        check_real("policy_evaluation", "theta", theta, 0.0, np.inf, low_open=True)
    model = tabular_model(env, "policy_evaluation")
    pi = _policy_matrix(policy, model.n_states, model.n_actions, "policy_evaluation")
    return _evaluate(model, pi, gamma, "policy_evaluation")


def value_iteration(env, gamma=0.99, theta=1e-10, max_iterations=100_000):
    """Value iteration -> (V, policy): sweeps V <- max_a Q(s, a) until the largest change is below
    theta; policy is greedy in the final V (lowest action on ties). RuntimeError if it has not
    converged after max_iterations sweeps (with gamma = 1 that means some state never terminates).

    >>> from deepkern import rl
    >>> V, policy = rl.value_iteration(rl.CliffWalking(), gamma=1.0)
    >>> V.shape, float(V[36])                     # 13 steps of -1 from the start to the goal
    ((48,), -13.0)
    """
    gamma = check_real("value_iteration", "gamma", gamma, 0.0, 1.0)
    theta = check_real("value_iteration", "theta", theta, 0.0, np.inf, low_open=True)
    max_iterations = check_int("value_iteration", "max_iterations", max_iterations, low=1)
    model = tabular_model(env, "value_iteration")
    V = np.zeros(model.n_states)
    for _ in range(max_iterations):
        V_new = expected_q(model, V, gamma).max(axis=1)
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < theta:
            break
    else:
        raise RuntimeError(
            f"value_iteration: no convergence to theta={theta} in {max_iterations} sweeps "
            f"(gamma={gamma}); with gamma=1 some state may never reach a terminal state"
        )
    return V, _greedy(expected_q(model, V, gamma), max(1e-9, 10 * theta))


def policy_iteration(env, gamma=0.99, theta=None, max_iterations=1000, initial_policy=None):
    """Policy iteration -> (V, policy): exact evaluation (a linear solve), then greedy improvement,
    until the policy is stable. It starts by evaluating initial_policy (default: the equiprobable
    random policy, which terminates in the usual grid worlds even when gamma = 1). theta is
    accepted for symmetry with value_iteration; the exact evaluation does not need it.

    >>> import numpy as np
    >>> from deepkern import rl
    >>> env = rl.CliffWalking()
    >>> V, policy = rl.policy_iteration(env, gamma=1.0)
    >>> bool(np.allclose(V, rl.value_iteration(env, gamma=1.0)[0]))
    True
    """
    gamma = check_real("policy_iteration", "gamma", gamma, 0.0, 1.0)
    if theta is not None:
        check_real("policy_iteration", "theta", theta, 0.0, np.inf, low_open=True)
    max_iterations = check_int("policy_iteration", "max_iterations", max_iterations, low=1)
    model = tabular_model(env, "policy_iteration")
    S, A = model.n_states, model.n_actions
    pi = (
        np.full((S, A), 1.0 / A) if initial_policy is None else _policy_matrix(initial_policy, S, A, "policy_iteration")
    )
    V = _evaluate(model, pi, gamma, "policy_iteration")
    policy = None
    for _ in range(max_iterations):
        Q = expected_q(model, V, gamma)
        new = _greedy(Q, 1e-9)
        if gamma == 1.0 and policy is not None:
            # Undiscounted: a tie may lead into a zero-reward loop that never terminates, so an
            # action changes only when strictly better (the improvement theorem's form).
            rows = np.arange(S)
            scale = max(1.0, float(np.abs(Q).max()))
            new = np.where(Q[rows, new] > Q[rows, policy] + 1e-9 * scale, new, policy)
        if policy is not None and np.array_equal(new, policy):
            return V, policy
        V_new = _evaluate(model, _policy_matrix(new, S, A, "policy_iteration"), gamma, "policy_iteration")
        # Switching between actions of equal value (round-off apart) improves nothing: stop there
        # rather than cycle (this happens with gamma = 1, where the solves are ill-conditioned).
        if policy is not None and np.abs(V_new - V).max() <= 1e-9 * max(1.0, float(np.abs(V).max())):
            return V_new, new
        policy, V = new, V_new
    raise RuntimeError(f"policy_iteration: policy not stable after {max_iterations} improvements")
