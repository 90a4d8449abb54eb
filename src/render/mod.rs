//! Templates to text: one handlebars template per output file, one context struct per template.
