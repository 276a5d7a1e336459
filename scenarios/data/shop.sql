-- Sample shop database for the developer-assistant scenario.
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR, city VARCHAR);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                     amount DECIMAL(10, 2), order_date DATE);
INSERT INTO customers VALUES
  (1, 'Alice', 'Shanghai'), (2, 'Bob', 'Beijing'), (3, 'Chen', 'Shanghai'),
  (4, 'Dana', 'Shenzhen'), (5, 'Eve', 'Beijing'), (6, 'Fang', 'Hangzhou');
INSERT INTO orders VALUES
  (1, 1, 120.00, '2026-01-05'), (2, 1, 80.50, '2026-02-11'), (3, 2, 300.00, '2026-02-14'),
  (4, 3, 45.00, '2026-03-01'), (5, 3, 410.00, '2026-03-08'), (6, 4, 99.90, '2026-03-09'),
  (7, 5, 250.00, '2026-04-02'), (8, 5, 60.00, '2026-04-20'), (9, 1, 15.00, '2026-05-01'),
  (10, 2, 220.00, '2026-05-03'), (11, 3, 30.00, '2026-05-07'), (12, 6, 500.00, '2026-06-10');
