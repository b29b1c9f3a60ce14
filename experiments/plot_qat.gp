# plot_qat.gp -- docs/img/qat_curves.png from the TSVs of qat_report.py:
# validation accuracy and the clipped fraction of the weights per epoch.
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_qat.gp
set terminal pngcairo size 1400,520 font ",10"
set output out.'/qat_curves.png'
files = system('cat '.dir.'/index.txt')
set multiplot layout 1,2
set key bottom right font ",8"
set xlabel 'epoch'
set ylabel 'validation accuracy %'
set grid
plot for [f in files] dir.'/'.f.'.tsv' using 1:($2*100) with linespoints title f noenhanced
set ylabel 'weights in the clipped region %'
set key top right font ",8"
set logscale y
plot for [f in files] dir.'/'.f.'.tsv' using 1:($3*100) with linespoints title f noenhanced
unset multiplot
