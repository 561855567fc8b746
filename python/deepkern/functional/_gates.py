"""The stacked gate weights' shape checks, shared by the gated recurrent ops (lstm.py, gru.py)."""


def hidden_size(op, w_ih, w_hh, b_ih, b_hh, input_size, gates):
    """hidden_size from w_ih (2-D, checked by the caller), whose rows stack one block per gate
    (`gates`, e.g. "i, f, g, o"); w_hh must be (rows, hidden_size) and each bias given (rows,).
    A ValueError names the argument, its shape and what was expected."""
    n = len(gates.split(", "))
    G = int(w_ih.shape[0])
    if G < n or G % n:
        raise ValueError(
            f"{op}: 'w_ih' has shape {tuple(w_ih.shape)}; its rows must be {n}*hidden_size "
            f"(gates {gates} stacked), a positive multiple of {n}"
        )
    H = G // n
    if int(w_ih.shape[1]) != input_size:
        raise ValueError(
            f"{op}: 'w_ih' has shape {tuple(w_ih.shape)}; expected ({G}, {input_size}) (its columns must match "
            f"x's input_size {input_size})"
        )
    if tuple(w_hh.shape) != (G, H):
        raise ValueError(
            f"{op}: 'w_hh' has shape {tuple(w_hh.shape)}; expected ({G}, {H}) = ({n}*hidden_size, hidden_size) "
            f"from w_ih's {G} rows"
        )
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and tuple(b.shape) != (G,):
            raise ValueError(f"{op}: '{name}' has shape {tuple(b.shape)}; expected ({G},) = ({n}*hidden_size,)")
    return H
