# plot_seeds.gp -- docs/img/qat_seeds.png from qat_report.py's
# seeds_MODEL.tsv: one row of panels per model with several seeds, one panel
# per bit width that has them; the test accuracy of every clipping method
# (retrained from each seed's float model), mean with a
# sample-standard-deviation bar, and the float models' mean as a dashed line.
#   gnuplot -e "dir='results/qat_report'; out='docs/img'" experiments/plot_seeds.gp
models = system('cat '.dir.'/seeds_models.txt')
nm = words(models)
ncol = 1
do for [m=1:nm] {
  nb = words(system('cat '.dir.'/seeds_'.word(models, m).'_bits.txt'))
  if (nb > ncol) { ncol = nb }
}
set terminal pngcairo size 560*ncol,430*nm font ",10"
set output out.'/qat_seeds.png'
set multiplot layout nm,ncol
set ylabel 'test accuracy %'
set grid ytics
set xtics rotate by -30 noenhanced
set key below horizontal
set datafile missing 'NaN'
do for [m=1:nm] {
  model = word(models, m)
  f = dir.'/seeds_'.model.'.tsv'
  fmean = real(system('cat '.dir.'/seeds_'.model.'_float.txt'))
  bits = system('cat '.dir.'/seeds_'.model.'_bits.txt')
  nb = words(bits)
  nrow = int(system('grep -vc "^#" '.f))
  set xrange [-0.6:nrow-0.4]
  do for [i=1:ncol] {
    if (i <= nb) {
      set title model.', '.word(bits, i).' bits'
      plot f using 0:(column(3*i-1)):(column(3*i)):xtic(1) with yerrorbars pt 7 \
           title 'mean +- sd over seeds', fmean with lines dt 2 lc rgb 'black' title 'float (mean)'
    } else {
      set multiplot next
    }
  }
}
unset multiplot
