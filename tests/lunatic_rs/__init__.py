"""C guests that follow lunatic-rs 0.14.1's conventions (see lunatic_rs.h)."""
