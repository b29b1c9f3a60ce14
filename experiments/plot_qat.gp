# plot_qat.gp -- docs/img/qat_curves.png from the TSVs of qat_report.py: per
# epoch, the validation accuracy, the clipped fraction of the weights and
# the mean gradient norm of cnn's seed-1 runs; top row retraining from float,
# bottom row from scratch. curves_ROW.txt lists "RUN COLOUR DASHTYPE".
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_qat.gp
set terminal pngcairo size 1800,1000 font ",10"
set output out.'/qat_curves.png'
col(row, k) = system('cut -d" " -f'.k.' '.dir.'/curves_'.row.'.txt')
float_val = real(system('cat '.dir.'/curves_float_val.txt'))
set multiplot layout 2,3
set grid
set xlabel 'epoch'
set style data linespoints
do for [row in "retrain scratch"] {
  N = col(row, 1); C = col(row, 2); D = col(row, 3)
  what = (row eq "retrain") ? "retrained from float" : "from scratch"
  if (words(N) == 0) {   # no run of this row yet: three empty panels
    set label 1 'no runs yet' at graph 0.5, graph 0.5 center
    do for [k=1:3] { set title what; plot [0:1] [0:1] NaN notitle }
    unset label 1
    continue
  }
  set key bottom right font ",8" noenhanced
  set title 'validation accuracy, '.what
  set ylabel 'validation accuracy %'
  unset logscale y
  set autoscale y
  if (row eq "retrain" && float_val == float_val) {   # (NaN: no float run logged)
    set arrow 1 from graph 0, first 100*float_val to graph 1, first 100*float_val nohead lc rgb "#000000" dt 4 lw 1.5
  } else {
    unset arrow 1
  }
  set xtics 1
  plot for [i=1:words(N)] dir.'/'.word(N,i).'.tsv' using 1:($2*100) lc rgb word(C,i) dt int(word(D,i)) pt 7 ps 0.6 lw 1.5 title word(N,i)
  unset arrow 1
  unset key
  set title 'weights in the clipped region, '.what
  set ylabel 'weights in the clipped region %'
  set logscale y
  set yrange [0.01:100]   # fixed: a row whose runs have no clipped weights still plots
  plot for [i=1:words(N)] dir.'/'.word(N,i).'.tsv' using 1:($3*100) lc rgb word(C,i) dt int(word(D,i)) pt 7 ps 0.6 lw 1.5
  set title 'mean gradient norm, '.what
  set ylabel 'mean global gradient norm over the epoch'
  unset logscale y
  set autoscale y
  plot for [i=1:words(N)] dir.'/'.word(N,i).'.tsv' using 1:4 lc rgb word(C,i) dt int(word(D,i)) pt 7 ps 0.6 lw 1.5
}
unset multiplot
