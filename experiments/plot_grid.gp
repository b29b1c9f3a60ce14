# plot_grid.gp -- docs/img/qat_grid.png from qat_report.py's grid_MODEL.tsv:
# (first row: column names) change of test accuracy from the float model (points) against the bit
# width, one line per clipping method, one panel per model (seed 1,
# retrained from float).
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_grid.gp
models = system('cat '.dir.'/grid_models.txt')
nm = words(models)
set terminal pngcairo size 520*nm,480 font ",10"
set output out.'/qat_grid.png'
set multiplot layout 1,nm
set xlabel 'bits'
set xrange [8.5:1.5]
set xtics (8, 6, 4, 3, 2)
set ylabel 'change from float (points)'
set grid
set key bottom left font ",8"
set datafile missing 'NaN'
do for [i=1:nm] {
  f = dir.'/grid_'.word(models, i).'.tsv'
  set title word(models, i).', retrained from float'
  plot for [c=2:8] f using 1:c with linespoints pt 7 ps 0.7 title columnhead(c) noenhanced
}
unset multiplot
