"""`pasa reproduce`: published benchmarks rerun on the reference kernels, with tables and plots.

Modules, one job each:
    distributions  the benchmarks' input laws as deterministic numpy generators
    measure        run kernels on one draw; RMSE and RMSE/RMS(V) against the oracle, or only
                   the count of non-finite outputs
    paper          the PASA paper's random benchmark (experiment `paper`)
    fa3            FlashAttention-3's Table 3 fp16 rows (experiment `fa3`)
    frontier       where each kernel and profile starts to overflow (experiment `frontier`)
    runner         the shared run loop: CSV row by row, Ctrl-C keeps the rows, Markdown, figures
    tables         CSV and Markdown writing
    plots          heatmaps (matplotlib, an optional extra, imported lazily)
"""
