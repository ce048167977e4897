"""``make bench``: every module here with a ``run()`` yields dicts, printed one JSON per line.

Figures are measured in one run on one machine and compared as ratios in that run; nothing
here asserts a time (these machines are shared and noisy).
"""
