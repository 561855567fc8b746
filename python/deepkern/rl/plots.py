def smooth(x, window=10): raise NotImplementedError
plot_learning_curves = plot_policy = plot_values = smooth
