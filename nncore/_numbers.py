"""Checked numeric arguments: one wording, and never an OverflowError for inf or a 400-digit integer.

``int(float("inf"))`` raises OverflowError and ``float("0.1")`` quietly accepts a string; the
hyperparameters, schedules, callbacks and estimator arguments go through these instead, and a
bad value is a ValueError (TypeError for something that is not a number) naming the argument.
"""
import math
import numbers


def real(value):
    """``value`` as a float if it is a real number (bools are not); +-inf for integers too large for one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def shown(value):
    """``repr(value)``, cut short: a message quoting a 5,000-digit integer is not one line any more."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def whole(name, value, minimum):
    """``value`` as an int >= ``minimum``: a whole number (3 or 3.0), not inf, NaN, a string or a bool."""
    number = real(value)
    if number is None or not math.isfinite(number) or not number.is_integer() or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {shown(value)}")
    return int(value) if isinstance(value, numbers.Integral) else int(number)


def finite(name, value, minimum=-math.inf, upper=None, strict=False):
    """``value`` as a finite float >= ``minimum`` (> with ``strict``) and < ``upper`` if given."""
    number = real(value)
    if number is None:
        raise TypeError(f"{name} must be a number, got {shown(value)}")
    if (not math.isfinite(number) or number < minimum or (strict and number == minimum)
            or (upper is not None and number >= upper)):
        low = f"{'>' if strict else '>='} {minimum}" if minimum > -math.inf else ""
        high = f"< {upper}" if upper is not None else ""
        bounds = " and ".join(filter(None, (low, high)))
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {shown(value)}")
    return number
