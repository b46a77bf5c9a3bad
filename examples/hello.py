# A small program whose result shows what the wire keeps: tuples stay tuples,
# big ints stay exact, NaN stays a float, dict keys can be any hashable value,
# and an object referenced twice is still one object.
shared = [1, 2]
print("hello from monty")
{
    "tuple": (1, "two"),
    "list": shared,
    "same list": shared,
    "big": 2**100,
    "nan": float("nan"),
    "bytes": b"\x00\xff",
    (1, 2): frozenset({3}),
}
